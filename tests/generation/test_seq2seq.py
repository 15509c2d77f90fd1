"""Encoder-decoders with their KV cache (optimum's encoder_model / decoder_model / decoder_with_past_model):
exit 0, and a greedy loop of the test's own over the three files reproduces ``generate()``'s tokens for a
padded batch of 3 and for batch 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import onnxbridge
from tests.generation.conftest import SEQ2SEQ
from tests.test_report_schema import check

NEW = 10
PROMPTS = [[5, 17, 33, 8, 61], [40, 22, 9, 90, 14, 3, 77, 51, 12], [88, 6]]


def ort_greedy(folder: Path, prompts: list[list[int]], start: int, pad: int) -> np.ndarray:
    import onnxruntime as ort

    def session(name):
        return ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])

    enc, dec, past_dec = (
        session("encoder_model.onnx"),
        session("decoder_model.onnx"),
        session("decoder_with_past_model.onnx"),
    )
    width = max(map(len, prompts))
    ids = np.array([[pad] * (width - len(p)) + p for p in prompts], dtype=np.int64)
    mask = (np.arange(width) >= width - np.array([len(p) for p in prompts])[:, None]).astype(np.int64)
    (states,) = enc.run(None, {"input_ids": ids, "attention_mask": mask})
    names = [o.name for o in dec.get_outputs()]
    outs = dict(
        zip(
            names,
            dec.run(
                None,
                {
                    "input_ids": np.full((len(prompts), 1), start, np.int64),
                    "encoder_attention_mask": mask,
                    "encoder_hidden_states": states,
                },
            ),
        )
    )
    cross = {k.replace("present.", "past_key_values."): v for k, v in outs.items() if ".encoder." in k}
    chosen = []
    for _ in range(NEW):
        nxt = outs["logits"][:, -1].argmax(-1)
        chosen.append(nxt)
        own = {k.replace("present.", "past_key_values."): v for k, v in outs.items() if ".decoder." in k}
        names = [o.name for o in past_dec.get_outputs()]
        outs = dict(
            zip(
                names,
                past_dec.run(
                    None, {"input_ids": nxt[:, None].astype(np.int64), "encoder_attention_mask": mask, **own, **cross}
                ),
            )
        )
    return np.stack(chosen, 1)


def hf_greedy(folder: Path, prompts: list[list[int]], start: int, pad: int) -> np.ndarray:
    import torch
    from transformers import AutoModelForSeq2SeqLM, GenerationConfig

    model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
    model.generation_config = GenerationConfig(pad_token_id=pad, decoder_start_token_id=start)
    width = max(map(len, prompts))
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.no_grad():
        out = model.generate(
            input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=NEW, min_new_tokens=NEW
        )
    return out[:, 1:].numpy()


@pytest.mark.slow
@pytest.mark.parametrize("arch", SEQ2SEQ)
def test_seq2seq_with_past_reproduces_generate(arch, seq2seq_folders, tmp_path):
    import json

    src, out = seq2seq_folders[arch], tmp_path / "out"
    report = onnxbridge.convert(src, out, new_tokens=8)
    assert report.passed is True, report.generation.summary()
    assert {"encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx", "config.json"} <= {
        p.name for p in out.iterdir()
    }
    d = report.to_dict()
    assert "past_key_values.1.encoder.value" in d["inputs"] and d["outputs"][-1] == "present.1.decoder.value"
    check("report.schema.json", d)
    config = json.loads((src / "config.json").read_text())
    start, pad = config["decoder_start_token_id"], config["pad_token_id"]
    want = hf_greedy(src, PROMPTS, start, pad)
    np.testing.assert_array_equal(ort_greedy(out, PROMPTS, start, pad), want)
    np.testing.assert_array_equal(ort_greedy(out, PROMPTS[1:2], start, pad), hf_greedy(src, PROMPTS[1:2], start, pad))
    got = onnxbridge.generate(out, prompt_ids=PROMPTS, max_new_tokens=NEW)  # stops at eos: a prefix of generate's
    assert all(list(g) == list(w[: len(g)]) for g, w in zip(got.tokens, want))


@pytest.mark.slow
def test_whisper_with_past_reproduces_generate(tmp_path, run_cli):
    """Whisper (no encoder mask, fixed log-mel frames): three files, and the test's own loop over them
    reproduces WhisperForConditionalGeneration.generate() for a batch of 3 and batch 1."""
    import onnxruntime as ort
    import torch
    import transformers as tf

    cfg = tf.WhisperConfig(
        vocab_size=96,
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
        pad_token_id=1,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        init_std=0.2,
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = tf.WhisperForConditionalGeneration(cfg).eval()
    model.save_pretrained(tmp_path / "whisper")
    report = onnxbridge.convert(tmp_path / "whisper", tmp_path / "out", new_tokens=8)
    assert report.passed is True, report.generation.summary()
    out = tmp_path / "out"
    enc, dec, past_dec = (
        ort.InferenceSession(str(out / f), providers=["CPUExecutionProvider"])
        for f in ("encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx")
    )
    model.generation_config = tf.GenerationConfig(pad_token_id=1, decoder_start_token_id=1)
    for b in (3, 1):
        feats = np.random.default_rng(b).standard_normal((b, 8, 32)).astype(np.float32)
        with torch.no_grad():
            want = model.generate(
                input_features=torch.from_numpy(feats), do_sample=False, max_new_tokens=NEW, min_new_tokens=NEW
            )[:, -NEW:].numpy()  # with or without the start token
        (states,) = enc.run(None, {"input_features": feats})
        names = [o.name for o in dec.get_outputs()]
        outs = dict(
            zip(names, dec.run(None, {"input_ids": np.ones((b, 1), np.int64), "encoder_hidden_states": states}))
        )
        cross = {k.replace("present.", "past_key_values."): v for k, v in outs.items() if ".encoder." in k}
        got = []
        for _ in range(NEW):
            nxt = outs["logits"][:, -1].argmax(-1)
            got.append(nxt)
            own = {k.replace("present.", "past_key_values."): v for k, v in outs.items() if ".decoder." in k}
            names = [o.name for o in past_dec.get_outputs()]
            outs = dict(zip(names, past_dec.run(None, {"input_ids": nxt[:, None].astype(np.int64), **own, **cross})))
        np.testing.assert_array_equal(np.stack(got, 1), want)
    res = run_cli("generate", out, "--prompt-ids", "1,2")
    assert res.code == 2 and "speech model" in res.err
