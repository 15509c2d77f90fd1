"""validate A.onnx B.onnx: original vs simplified, float32 vs float16."""

from __future__ import annotations

import numpy as np

from onnxbridge import api

from . import onnx_models
from .conftest import flat, read_json


def test_original_vs_simplified_passes(onnx_file, tmp_path):
    a = onnx_file("a.onnx", onnx_models.mlp())
    simplified = tmp_path / "a.sim.onnx"
    api.simplify(a, simplified)
    report = api.validate(str(a), simplified)
    v = report.validation
    assert v.passed, v.summary()
    assert v.reference == "a.onnx (onnxruntime cpu)"
    assert [c.label for c in v.cases] == ["seed=0", "seed=1", "seed=2", "batch=1", "batch=5", "batch=11"]
    assert max(o.max_abs for c in v.cases for o in c.outputs) < 1e-5


def test_float32_vs_float16_passes_at_float16_tolerances_and_catches_a_broken_fp16(run_cli, onnx_file, tmp_path):
    a = onnx_file("a.onnx", onnx_models.mlp())
    h = onnx_file("a16.onnx", onnx_models.mlp(fp16=True))
    rep = tmp_path / "r.json"
    r = run_cli("validate", a, h, "--report", rep)
    assert r.code == 0, r.out + r.err
    v = read_json(rep)["validation"]
    assert v["tolerances"]["logits"]["from"] == "float16 default"
    worst = max(o["max_abs"] for c in v["cases"] for o in c["outputs"])
    assert 1e-5 < worst < 1e-2  # float16 rounding is visible, and inside the float16 tolerance
    assert any("computes in float16" in n for n in v["notes"])
    assert all(o["top1_agreement"] == 1.0 for c in v["cases"] for o in c["outputs"])
    # the same conversion with one weight wrong fails
    w = list(onnx_models.mlp_weights())
    w[2] = w[2].copy()
    w[2][3, 7] += 1.0
    bad = onnx_file("bad16.onnx", onnx_models.mlp(w, fp16=True))
    r = run_cli("validate", a, bad)
    assert r.code == 1
    assert "'logits'" in flat(r.out)


def test_float16_inputs_are_fed_to_a_float32_reference(onnx_file):
    """A model with float16 inputs against its float32 original: the inputs are cast per side."""
    from onnxbridge.runtime.sessions import OrtRunner

    a = OrtRunner(onnx_models.mlp(), "cpu")
    x16 = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float16)
    [y] = a.run({"x": x16})
    [y_ref] = a.run({"x": x16.astype(np.float32)})
    assert y.dtype == np.float32 and np.array_equal(y, y_ref)


def test_simplify_is_not_refused_for_sizes_the_original_cannot_run(onnx_file, tmp_path):
    """The original itself fails at swept batch sizes (its Reshape baked batch 2): those sizes say
    nothing about the simplification, which is kept."""
    baked = onnx_file("baked.onnx", onnx_models.flatten_rows(fixed_batch=2))
    report = api.simplify(baked, tmp_path / "baked.sim.onnx")
    assert report.simplify.applied, report.simplify.reason
    assert report.simplify.parity_passed is True
