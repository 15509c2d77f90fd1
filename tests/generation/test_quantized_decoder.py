"""int4 (MatMulNBits) and int8 (dynamic) copies of a with-past decoder, judged on generation against the fp32
files. Random-weight LMs have near-flat logits (any rounding flips the argmax), so the judge is a char-level
2-layer Llama trained here for a few seconds on tests/data/charlm.txt: its logits are peaked, and agreement
means something. Both ways: the copies agree on >= 0.9 of 64 greedy tokens; a copy with one weight
corrupted does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import onnxbridge
from onnxbridge.generation.quant_gate import generation_agreement, quantize_with_past

TEXT = Path(__file__).resolve().parents[1] / "data" / "charlm.txt"
PAD, BOS, EOS, OFFSET = 0, 1, 2, 3


def _encode(text: str, chars: str) -> list[int]:
    return [chars.index(c) + OFFSET for c in text]


@pytest.fixture(scope="module")
def charlm(tmp_path_factory) -> tuple[Path, Path, str]:
    """(source folder, with-past folder, alphabet) of a char LM trained on the bundled text."""
    import torch
    import transformers as tf

    text = " ".join(TEXT.read_text(encoding="utf-8").split())
    chars = "".join(sorted(set(text)))
    data = torch.tensor(_encode(text, chars))
    cfg = tf.LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=len(chars) + OFFSET,
        max_position_embeddings=256,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is many times faster on a shared, loaded machine
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = tf.LlamaForCausalLM(cfg)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for _ in range(400):
            starts = torch.randint(0, len(data) - 65, (16,))
            batch = torch.stack([data[s : s + 65] for s in starts])
            loss = model(input_ids=batch[:, :-1], labels=batch[:, :-1]).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.set_num_threads(threads)
    assert loss.item() < 2.0, f"the char LM did not learn the text (loss {loss.item():.2f})"
    root = tmp_path_factory.mktemp("charlm")
    model.generation_config = tf.GenerationConfig(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD)
    model.eval().save_pretrained(root / "src")
    report = onnxbridge.convert(root / "src", root / "fp32", new_tokens=8)
    assert report.passed is True
    return root / "src", root / "fp32", chars


def _prompts(chars: str) -> list[list[int]]:
    return [_encode(p, chars) for p in ("The keeper", "and the ships saw", "In winter the storms came")]


def test_int4_and_int8_copies_keep_the_greedy_tokens(charlm, tmp_path):
    _, fp32, chars = charlm
    results = {
        q.quantized.kind: q
        for q in quantize_with_past(fp32, tmp_path, ("int4", "int8"), _prompts(chars), new_tokens=64)
    }
    int4, int8 = results["int4"], results["int8"]
    assert int4.quantized.quantized_ops.get("com.microsoft::MatMulNBits", 0) == 15  # 7 per layer + the LM head
    assert int4.quantized.settings["block_size"] == 32
    assert int8.quantized.quantized_ops.get("MatMulInteger", 0) >= 14
    for q in (int4, int8):
        a = q.agreement
        assert q.passed, a.summary()
        assert len(a.agree) == 3 and all(len(row) == 64 for row in a.agree)
        assert 0 < a.max_drift < 5, a.summary()  # quantised: the logits move, but not far
        assert {"config.json", "generation_config.json", "model.onnx"} <= {p.name for p in q.quantized.folder.iterdir()}
    # the quantised folder generates through the same public loop
    out = onnxbridge.generate(int4.quantized.folder, prompt_ids=[_prompts(chars)[0]], max_new_tokens=8)
    assert len(out.tokens[0]) == 8


def test_a_corrupted_copy_is_caught(charlm, tmp_path):
    """The fp32 folder with its LM head's weight shuffled: same shapes, other tokens; agreement collapses."""
    import shutil

    import onnx
    from onnx import numpy_helper

    _, fp32, chars = charlm
    bad = tmp_path / "bad"
    shutil.copytree(fp32, bad)
    model = onnx.load(str(bad / "model.onnx"))
    head = max(
        model.graph.initializer, key=lambda t: (len(t.dims) == 2 and t.dims[-1] == len(chars) + OFFSET, np.prod(t.dims))
    )
    w = numpy_helper.to_array(head).copy()
    np.random.default_rng(0).shuffle(w, axis=-1)
    head.CopyFrom(numpy_helper.from_array(w, head.name))
    onnx.save(model, str(bad / "model.onnx"))
    a = generation_agreement(fp32, bad, _prompts(chars), 32)
    assert a.token_agreement < 0.5 and a.max_drift > 1 and all(f is not None for f in a.first_divergence), a.summary()
