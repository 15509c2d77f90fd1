"""Tiny random-weight causal LMs (2 layers, hidden 32-64, vocab 96), saved with save_pretrained once per
session: one per architecture family the with-past export must get right (grouped-query and multi-query
attention, sliding windows, rotary variants, ALiBi, learned positions, tied embeddings)."""

from __future__ import annotations

from pathlib import Path

import pytest

VOCAB = 96
SPECIAL = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
_DEC = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "vocab_size": VOCAB,
    "max_position_embeddings": 128,
    "initializer_range": 0.2,
}


def _configs():
    import transformers as tf

    return {
        # grouped-query attention, tied embeddings
        "llama": tf.LlamaConfig(**_DEC, num_key_value_heads=2, tie_word_embeddings=True),
        "mistral": tf.MistralConfig(**_DEC, num_key_value_heads=2, sliding_window=8),  # window crossed
        "qwen2": tf.Qwen2Config(**_DEC, num_key_value_heads=2),
        "qwen3": tf.Qwen3Config(**_DEC, num_key_value_heads=2, head_dim=16),  # q/k norms, head_dim != hidden/heads
        "phi3": tf.Phi3Config(**_DEC, num_key_value_heads=2, partial_rotary_factor=0.5),  # fused qkv, partial rotary
        "gemma2": tf.Gemma2Config(**_DEC, num_key_value_heads=2, head_dim=8, sliding_window=8),  # softcaps, windows
        "gemma3_text": tf.Gemma3TextConfig(
            **_DEC,
            num_key_value_heads=1,
            head_dim=8,
            sliding_window=8,
            layer_types=["sliding_attention", "full_attention"],
        ),
        "granite": tf.GraniteConfig(**_DEC, num_key_value_heads=2),
        "gpt2": tf.GPT2Config(
            n_embd=32, n_layer=2, n_head=4, vocab_size=VOCAB, n_positions=128, initializer_range=0.2
        ),  # learned positions, Conv1D
        "gpt_neox": tf.GPTNeoXConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            vocab_size=VOCAB,
            max_position_embeddings=128,
            rotary_pct=0.25,
            initializer_range=0.2,
        ),  # partial rotary, parallel residual
        "falcon": tf.FalconConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=4, vocab_size=VOCAB, initializer_range=0.2
        ),  # multi-query attention, rotary
        "opt": tf.OPTConfig(
            hidden_size=32,
            ffn_dim=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            vocab_size=VOCAB,
            max_position_embeddings=128,
            word_embed_proj_dim=32,
            init_std=0.2,
        ),
        "bloom": tf.BloomConfig(hidden_size=32, n_layer=2, n_head=4, vocab_size=VOCAB, initializer_range=0.2),  # ALiBi
    }


ARCHS = (
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "phi3",
    "gemma2",
    "gemma3_text",
    "granite",
    "gpt2",
    "gpt_neox",
    "falcon",
    "opt",
    "bloom",
)


def _tokenizer(folder: Path) -> None:
    """A word-level tokenizer over VOCAB words (w3..), specials <pad> <s> </s>, saved beside the model."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i for i in range(3, VOCAB)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(folder)


@pytest.fixture(scope="session")
def lm_folders(tmp_path_factory) -> dict[str, Path]:
    """arch -> a saved folder (config.json, model.safetensors, generation_config.json; llama: a tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    root = tmp_path_factory.mktemp("lms")
    out = {}
    for arch, cfg in _configs().items():
        for k, v in SPECIAL.items():
            setattr(cfg, k, v)
        with torch.random.fork_rng():
            torch.manual_seed(0)
            model = AutoModelForCausalLM.from_config(cfg)
        model.generation_config = GenerationConfig(**SPECIAL)
        model.save_pretrained(root / arch)
        out[arch] = root / arch
    _tokenizer(out["llama"])
    return out


def _seq2seq_configs():
    import transformers as tf

    small = {
        "vocab_size": VOCAB,
        "d_model": 32,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "encoder_attention_heads": 4,
        "decoder_attention_heads": 4,
        "encoder_ffn_dim": 64,
        "decoder_ffn_dim": 64,
        "max_position_embeddings": 64,
        "init_std": 0.2,
    }
    return {
        # relative position buckets, no position embeddings, tied and rescaled embeddings
        "t5": tf.T5Config(
            vocab_size=VOCAB,
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_decoder_layers=2,
            num_heads=4,
            decoder_start_token_id=0,
            pad_token_id=0,
            eos_token_id=1,
            initializer_factor=2.0,
        ),
        "bart": tf.BartConfig(**small, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2),
        "marian": tf.MarianConfig(**small, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0),  # sinusoids
    }


SEQ2SEQ = ("t5", "bart", "marian")


@pytest.fixture(scope="session")
def seq2seq_folders(tmp_path_factory) -> dict[str, Path]:
    import torch
    from transformers import AutoModelForSeq2SeqLM

    root = tmp_path_factory.mktemp("s2s")
    out = {}
    for arch, cfg in _seq2seq_configs().items():
        with torch.random.fork_rng():
            torch.manual_seed(0)
            AutoModelForSeq2SeqLM.from_config(cfg).save_pretrained(root / arch)
        out[arch] = root / arch
    return out


WHISPER_SPECIALS = {  # ids past the 92 ordinary tokens, as a multilingual Whisper lays them out
    "<|endoftext|>": 92,
    "<|startoftranscript|>": 93,
    "<|en|>": 94,
    "<|fr|>": 95,
    "<|transcribe|>": 96,
    "<|translate|>": 97,
    "<|notimestamps|>": 98,
    "<|nospeech|>": 99,
}


def _whisper_tokenizer(folder: Path) -> None:
    """A WhisperTokenizer over 92 letters and letter pairs (byte-level BPE, no merges) plus the specials."""
    import json
    import tempfile

    from transformers import WhisperTokenizer

    base = [chr(c) for c in range(ord("a"), ord("z") + 1)] + ["Ġ" + chr(c) for c in range(ord("a"), ord("z") + 1)]
    base += [f"{a}{b}" for a in "aeiou" for b in "nrst"] + [f"Ġ{a}{b}" for a in "bcdfg" for b in "aeiou"][:20]
    with tempfile.TemporaryDirectory() as scratch:
        vocab, merges = Path(scratch) / "vocab.json", Path(scratch) / "merges.txt"
        vocab.write_text(json.dumps({t: i for i, t in enumerate(base)}))
        merges.write_text("#version: 0.2\n")
        eot = "<|endoftext|>"
        tok = WhisperTokenizer(str(vocab), str(merges), unk_token=eot, bos_token=eot, eos_token=eot, pad_token=eot)
        tok.add_special_tokens({"additional_special_tokens": list(WHISPER_SPECIALS)[1:]})
        assert tok.convert_tokens_to_ids(list(WHISPER_SPECIALS)) == list(WHISPER_SPECIALS.values())
        tok.save_pretrained(folder)


@pytest.fixture(scope="session")
def whisper_folder(tmp_path_factory) -> Path:
    """A tiny multilingual Whisper (8 mel bins, 32 frames = 1 s at hop 500), its feature extractor, its
    tokenizer and a generation config with language / task / no-timestamps tokens and suppressions."""
    import torch
    import transformers as tf

    sp = WHISPER_SPECIALS
    eot, sot = sp["<|endoftext|>"], sp["<|startoftranscript|>"]
    cfg = tf.WhisperConfig(
        vocab_size=100,
        num_mel_bins=8,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        d_model=32,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=16,
        max_target_positions=64,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
        init_std=0.2,
    )
    folder = tmp_path_factory.mktemp("whisper") / "whisper"
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = tf.WhisperForConditionalGeneration(cfg).eval()
    model.generation_config = tf.GenerationConfig(
        decoder_start_token_id=sot,
        eos_token_id=eot,
        pad_token_id=eot,
        bos_token_id=eot,
        is_multilingual=True,
        lang_to_id={"<|en|>": sp["<|en|>"], "<|fr|>": sp["<|fr|>"]},
        task_to_id={"transcribe": sp["<|transcribe|>"], "translate": sp["<|translate|>"]},
        no_timestamps_token_id=sp["<|notimestamps|>"],
        suppress_tokens=[21, sp["<|nospeech|>"]],  # 21: the unsuppressed model's favourite on the tests' audio
        begin_suppress_tokens=[eot],
        max_length=64,
    )
    model.save_pretrained(folder)
    tf.WhisperFeatureExtractor(
        feature_size=8, sampling_rate=16000, hop_length=500, chunk_length=1, n_fft=400
    ).save_pretrained(folder)
    _whisper_tokenizer(folder)
    return folder


@pytest.fixture(scope="session")
def whisper_onnx(whisper_folder, tmp_path_factory) -> Path:
    """``whisper_folder`` converted (encoder, the two decoders, the merged decoder); tests copy it to change it."""
    import onnxbridge

    out = tmp_path_factory.mktemp("whisper-onnx") / "out"
    report = onnxbridge.convert(whisper_folder, out, new_tokens=6)
    assert report.passed is True, report.generation.summary()
    return out


@pytest.fixture(scope="session")
def t5_onnx(seq2seq_folders, tmp_path_factory) -> tuple[Path, object]:
    """The tiny T5 converted with its merged decoder, and the convert report."""
    import onnxbridge

    out = tmp_path_factory.mktemp("t5-onnx") / "out"
    report = onnxbridge.convert(seq2seq_folders["t5"], out, new_tokens=6)
    assert report.passed is True, report.generation.summary()
    return out, report


@pytest.fixture(scope="session")
def charlm(tmp_path_factory):
    """A char-level Llama trained on the bundled text, with its tokenizer and its with-past folder (charlm.py)."""
    from .charlm import train_charlm

    return train_charlm(tmp_path_factory.mktemp("charlm"))
