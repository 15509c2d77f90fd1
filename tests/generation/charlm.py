"""A char-level 2-layer Llama trained for a few seconds on the bundled text (the one quantised with-past
copies are judged on, onnxbridge/generation/data/lighthouse.txt), with a char-level tokenizer, converted
with its KV cache. Random-weight LMs have near-flat logits that any rounding reorders; this one's logits
are peaked (it learns the text almost by heart: loss ~0.15), so token agreement means something."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from onnxbridge.generation.perplexity import BUNDLED_TEXT

PAD, BOS, EOS, OFFSET = 0, 1, 2, 3
STEPS = 400


@dataclass(frozen=True)
class CharLM:
    """The source folder, its with-past folder (fp32) and the alphabet (char ``c`` is id ``chars.index(c) + 3``)."""

    source: Path
    fp32: Path
    chars: str

    def encode(self, text: str) -> list[int]:
        return [self.chars.index(c) + OFFSET for c in text]


def _tokenizer(folder: Path, chars: str) -> None:
    """One token per character (ids from 3), specials <pad> <s> </s>."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": PAD, "<s>": BOS, "</s>": EOS, **{c: i + OFFSET for i, c in enumerate(chars)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(folder)


def train_charlm(root: Path) -> CharLM:
    import torch
    import transformers as tf

    import onnxbridge

    text = " ".join(BUNDLED_TEXT.read_text(encoding="utf-8").split())
    chars = "".join(sorted(set(text)))
    data = torch.tensor([chars.index(c) + OFFSET for c in text])
    cfg = tf.LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(chars) + OFFSET,
        max_position_embeddings=64,  # trained on windows of 64: the perplexity window (variants/folder.py)
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is many times faster on a shared, loaded machine
    try:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = tf.LlamaForCausalLM(cfg)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
            # one-cycle: the same 400 steps reach loss ~0.15 (constant lr: ~1.5, and int4 agreement 0.91)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=STEPS, pct_start=0.1)
            for _ in range(STEPS):
                starts = torch.randint(0, len(data) - 65, (16,))
                batch = torch.stack([data[s : s + 65] for s in starts])
                loss = model(input_ids=batch[:, :-1], labels=batch[:, :-1]).loss
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
    finally:
        torch.set_num_threads(threads)
    assert loss.item() < 0.5, f"the char LM did not learn the text (loss {loss.item():.2f})"
    model.generation_config = tf.GenerationConfig(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
    model.eval().save_pretrained(root / "src")
    _tokenizer(root / "src", chars)
    report = onnxbridge.convert(root / "src", root / "fp32", new_tokens=8)
    assert report.passed is True
    return CharLM(root / "src", root / "fp32", chars)
