"""fp16 with fp32 islands found by measurement, on graphs built to break fp16 (overflow, cancellation)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from onnxbridge import api
from onnxbridge.options import Budget
from onnxbridge.results import VariantStatus
from onnxbridge.variants.mixed import mixed_precision
from onnxbridge.variants.precision import convert_bf16, convert_fp16
from tests.variants import models
from tests.variants.conftest import FAST


def _cases(width: int, n: int = 2, seed: int = 1):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((8, width)).astype(np.float32)} for _ in range(n)]


def test_fp16_keeps_float_io_and_is_valid_onnx():
    m16 = convert_fp16(models.classifier_onnx())
    onnx.checker.check_model(m16)
    assert m16.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert m16.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in m16.graph.initializer)
    mb = convert_bf16(models.classifier_onnx())
    assert any(t.data_type == onnx.TensorProto.BFLOAT16 for t in mb.graph.initializer)


def test_overflow_nodes_are_found_and_kept_in_fp32(tmp_path):
    """h * h reaches ~1e6: fp16 gives inf there. ONNX Runtime's CPU provider would hide it (it computes fp16
    models in fp32), so the search runs on a graph that rounds like fp16, and keeps the square in fp32."""
    src = tmp_path / "rms.onnx"
    onnx.save(models.rms_overflow(), str(src))
    report = api.variant(src, "fp16", min_speedup=0, **FAST)
    (v,) = report.variants.variants
    assert v.status is VariantStatus.PASSED, v.reasons
    kept = {k.name: k for k in v.kept_fp32}
    assert kept["square"].kind == "overflow" and "non-finite in fp16" in kept["square"].reason
    assert kept["mean"].kind == "overflow" and "beyond fp16's 65504" in kept["mean"].reason
    onnx.checker.check_model(onnx.load(v.path))  # the converter's duplicate Casts (Mul(h, h)) are gone
    report.write(tmp_path / "r.md")
    md = (tmp_path / "r.md").read_text()
    assert "| kept fp32 | op | why |" in md and "| square | Mul | overflow:" in md
    x = np.random.default_rng(9).standard_normal((5, 32)).astype(np.float32)  # batch 5: not a judged size
    run = lambda p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]  # noqa: E731
    got, ref = run(v.path), run(src)
    assert np.isfinite(got).all()
    assert (got * ref).sum() / np.linalg.norm(got) / np.linalg.norm(ref) > 0.999


def test_cancellation_is_found_by_bisection():
    _, result = mixed_precision(models.cancellation(), _cases(16), Budget((("cosine_min", 0.999),)), margin=0.05)
    assert {k.name for k in result.kept if k.kind == "accuracy"} == {"add_big", "sub_big"}
    reasons = [k.reason for k in result.kept if k.kind == "accuracy"]
    assert all("converting it broke the budget" in r and "cosine_min" in r for r in reasons)
