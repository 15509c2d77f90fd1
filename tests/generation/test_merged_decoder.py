"""``decoder_model_merged.onnx`` (optimum's layout: one If on ``use_cache_branch`` over the two decoders,
shared weights): the test's own greedy loop over encoder_model.onnx + the merged file (plain ONNX Runtime,
empty pasts on the first step) reproduces ``generate()`` for a left-padded batch of 3 and batch 1, for T5
and Whisper; the merged file holds one copy of the weights; a wrong branch is caught."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import onnxbridge
from tests.generation.test_seq2seq import NEW, PROMPTS, hf_greedy

pytestmark = pytest.mark.slow


def merged_greedy(folder: Path, encoder_feeds: dict, mask: np.ndarray | None, start: int) -> np.ndarray:
    """Greedy tokens through encoder_model.onnx and decoder_model_merged.onnx, as optimum's runtime feeds
    them: the first step with use_cache_branch False and empty pasts, then True with the cache."""
    import onnxruntime as ort

    enc = ort.InferenceSession(str(folder / "encoder_model.onnx"), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(folder / "decoder_model_merged.onnx"), providers=["CPUExecutionProvider"])
    (states,) = enc.run(None, encoder_feeds)
    batch = states.shape[0]
    inputs = {i.name: i for i in dec.get_inputs()}
    past = {
        n: np.zeros((batch, i.shape[1], 0, i.shape[3]), np.float32)
        for n, i in inputs.items()
        if n.startswith("past_key_values.")
    }
    ids = np.full((batch, 1), start, np.int64)
    chosen = []
    for step in range(NEW):
        feeds = {"input_ids": ids, "encoder_hidden_states": states, "use_cache_branch": np.array([step > 0]), **past}
        if mask is not None:
            feeds["encoder_attention_mask"] = mask
        outs = dict(zip([o.name for o in dec.get_outputs()], dec.run(None, feeds)))
        ids = outs["logits"][:, -1].argmax(-1)[:, None].astype(np.int64)
        chosen.append(ids[:, 0])
        for name, value in outs.items():
            if name.startswith("present.") and (step == 0 or ".decoder." in name):
                past[name.replace("present.", "past_key_values.")] = value
    return np.stack(chosen, 1)


def _sizes(folder: Path) -> tuple[int, int, int]:
    """Bytes of the merged file, of the two decoders, and of the weights of the decoder with past."""
    import onnx

    weights = sum(len(t.raw_data) for t in onnx.load(str(folder / "decoder_with_past_model.onnx")).graph.initializer)
    two = sum((folder / f).stat().st_size for f in ("decoder_model.onnx", "decoder_with_past_model.onnx"))
    return (folder / "decoder_model_merged.onnx").stat().st_size, two, weights


def test_t5_merged_decoder_reproduces_generate(seq2seq_folders, t5_onnx, tmp_path):
    import json
    import shutil

    src, (built, report) = seq2seq_folders["t5"], t5_onnx
    out = Path(shutil.copytree(built, tmp_path / "out"))
    assert any("decoder_model_merged.onnx" in n and "judged" in n for n in report.to_dict()["notes"])
    config = json.loads((src / "config.json").read_text())
    start, pad = config["decoder_start_token_id"], config["pad_token_id"]
    for prompts in (PROMPTS, PROMPTS[1:2]):
        width = max(map(len, prompts))
        ids = np.array([[pad] * (width - len(p)) + p for p in prompts], np.int64)
        mask = np.array([[0] * (width - len(p)) + [1] * len(p) for p in prompts], np.int64)
        got = merged_greedy(out, {"input_ids": ids, "attention_mask": mask}, mask, start)
        np.testing.assert_array_equal(got, hf_greedy(src, prompts, start, pad))
    merged, two, weights = _sizes(out)
    assert merged < two - 0.9 * weights  # one copy of the weights, not two
    import onnx

    onnx.checker.check_model(str(out / "decoder_model_merged.onnx"), full_check=True)
    got = onnxbridge.generate(out, prompt_ids=PROMPTS, max_new_tokens=NEW)  # our own loop, merged file only
    (out / "decoder_model.onnx").unlink()
    only_merged = onnxbridge.generate(out, prompt_ids=PROMPTS, max_new_tokens=NEW)
    assert only_merged.tokens == got.tokens


def test_whisper_merged_decoder_and_a_wrong_branch(whisper_folder, whisper_onnx, tmp_path):
    """Whisper's fixed-length cross-attention cache: the merged file takes empty pasts on the first step.
    Swapping the two branches (the first step run as if it had a cache) fails the generation check."""
    import shutil

    import onnx
    import torch
    import transformers as tf

    out = Path(shutil.copytree(whisper_onnx, tmp_path / "out"))
    model = tf.WhisperForConditionalGeneration.from_pretrained(whisper_folder).eval()
    model.generation_config = tf.GenerationConfig(pad_token_id=1, decoder_start_token_id=1)
    for b in (3, 1):
        feats = np.random.default_rng(b).standard_normal((b, 8, 32)).astype(np.float32)
        with torch.no_grad():
            want = model.generate(
                input_features=torch.from_numpy(feats), do_sample=False, max_new_tokens=NEW, min_new_tokens=NEW
            )[:, -NEW:].numpy()
        np.testing.assert_array_equal(merged_greedy(out, {"input_features": feats}, None, 1), want)
    merged, two, weights = _sizes(out)
    assert merged < two - 0.9 * weights

    # a planted bug: every step runs the first-step branch (no cache: each token sees only itself)
    m = onnx.load(str(out / "decoder_model_merged.onnx"))
    attrs = {a.name: a for a in m.graph.node[0].attribute}
    attrs["then_branch"].g.CopyFrom(attrs["else_branch"].g)
    onnx.save(m, str(out / "decoder_model_merged.onnx"))
    for split in ("decoder_model.onnx", "decoder_with_past_model.onnx"):  # the merged file alone is judged
        (out / split).unlink()
    bad = onnxbridge.validate(whisper_folder, out)
    assert bad.passed is False and "diverges at step" in bad.generation.summary()
    assert bad.generation.rows[0].step >= 1  # the first step (no cache either way) agrees


def test_no_merged_decoder(seq2seq_folders, tmp_path, run_cli):
    out = tmp_path / "out"
    res = run_cli("convert", seq2seq_folders["marian"], "-o", out, "--no-merged-decoder", "--no-validate")
    assert res.code == 0, res.err
    assert (out / "decoder_with_past_model.onnx").is_file() and not (out / "decoder_model_merged.onnx").exists()
