"""The Hugging Face models people bring (tiny configs, random weights, no downloads): each converts with
parity and dynamic batch / sequence axes, and its ONNX file is then re-run on ONNX Runtime at sizes the
validator never used and compared with transformers directly.

One test per family, so each model is exported once (exports take seconds each).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

import onnxbridge
from tests.models import hf_models

pytest.importorskip("transformers")

MODELS = Path(__file__).resolve().parent.parent / "models" / "hf_models.py"

# family -> (outputs, what else the report must show)
EXPECTED = {
    "t5": ("logits", "encoder_last_hidden_state"),
    "whisper": ("logits", "encoder_last_hidden_state"),
    "qwen2": ("logits",),
    "wav2vec2": ("logits",),
    "swin": ("logits",),
    "convnext": ("logits",),
    "clip": ("logits_per_image", "logits_per_text", "text_embeds", "image_embeds"),
}


def _source_outputs(model, feeds: dict[str, np.ndarray], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """transformers itself, called as a user would (no onnxbridge in the loop)."""
    kwargs = {k: torch.from_numpy(v) for k, v in feeds.items()}
    if "use_cache" in model.forward.__code__.co_varnames:
        kwargs["use_cache"] = False
    with torch.no_grad():
        out = model(**kwargs)
    return {n: out[n].numpy() for n in names}


@pytest.mark.route("torch.export/dynamo")
@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_hugging_face_family_converts_with_parity(family, tmp_path):
    specs, other_sizes, make = hf_models.FAMILIES[family]
    out = tmp_path / f"{family}.onnx"
    report = onnxbridge.convert(f"{MODELS}:{family}", out, inputs=specs, simplify=False)
    v = report.validation
    assert report.passed is True, v.summary()
    assert report.conversion.route == "torch.export/dynamo"
    assert report.conversion.output_names[: len(EXPECTED[family])] == EXPECTED[family]
    assert v.source_repeats is True
    _family_checks(family, report)

    # independent of the validator: ONNX Runtime at sizes it did not use, against transformers
    model, _ = getattr(hf_models, family)()
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    graph_outputs = [o.name for o in sess.get_outputs()]
    for i, sizes in enumerate(other_sizes):
        for axis, size in sizes.items():
            assert size not in v.dynamic_axes.get(axis, ()), (axis, size)
        feeds = make(sizes, 100 + i)
        got = dict(zip(graph_outputs, sess.run(None, feeds)))
        for name, ref in _source_outputs(model, feeds, EXPECTED[family]).items():
            np.testing.assert_allclose(got[name], ref, atol=2e-5, rtol=1e-3, err_msg=f"{family} {name} at {sizes}")


def _family_checks(family: str, report) -> None:
    v = report.validation
    labels = {c.label for c in v.cases}
    notes = " ".join(report.conversion.notes)
    axes = {a.axis: a for a in v.axes}
    if family in ("t5", "whisper", "qwen2"):  # caches (EncoderDecoderCache, DynamicCache) stopped both routes
        assert "without its KV cache (use_cache=False)" in notes
    if family == "whisper":  # a batch-1 example: torch.export specialised batch 1 until the example grew
        assert "grown from batch=1 to 2" in notes
        assert v.cases[0].shapes["input_features"][0] == 1  # the export size itself (1) is checked
        assert {"batch=4", "batch=7"} <= labels
    if family == "wav2vec2":  # the source cannot run 1 sample: listed, and the smallest size it runs checked
        samples = axes["samples"]
        assert samples.smallest_runnable is not None and 2 <= samples.smallest_runnable <= 30
        assert f"samples={samples.smallest_runnable}" in labels
        assert [c.kind.value for c in v.cases if c.label == "samples=1"] == ["source_limit"]
    if family == "clip":  # the position table bounds seq at 32: the source's own limit, not the export's
        assert axes["seq"].exported == (2, 32) and axes["seq"].outcome.value == "source_limit"
