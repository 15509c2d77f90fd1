"""int4 weight-only on what the quantizer cannot see as written (Gemm, a tied Transpose), and the ORT format."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from onnxbridge import api
from onnxbridge.results import VariantStatus
from onnxbridge.variants.quantize import weights_as_matmul
from tests.variants import models
from tests.variants.conftest import FAST, rerun


def _gemm_lm():
    """x @ W.T + b (Gemm, transB) then a tied head reading a table through a Transpose."""
    rng = np.random.default_rng(4)
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1, name="gemm"),
        helper.make_node("Transpose", ["e"], ["eT"], perm=[1, 0], name="tr"),
        helper.make_node("MatMul", ["g", "eT"], ["logits"], name="head"),
    ]
    inits = {
        "w": rng.standard_normal((64, 64)).astype(np.float32) / 8,
        "b": np.ones(64, np.float32),
        "e": rng.standard_normal((50, 64)).astype(np.float32),
    }
    return models.graph(
        nodes,
        inits,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 50])],
    )


def test_gemm_and_tied_transpose_become_constant_matmuls():
    m = _gemm_lm()
    m2, counts = weights_as_matmul(m)
    assert counts == {"gemm": 1, "transpose": 1}
    assert sorted(n.op_type for n in m2.graph.node) == ["Add", "MatMul", "MatMul"]
    x = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    run = lambda mm: ort.InferenceSession(mm.SerializeToString()).run(None, {"x": x})[0]  # noqa: E731
    np.testing.assert_allclose(run(m2), run(m), rtol=1e-5, atol=1e-5)


def test_int4_quantizes_the_rewritten_weights(tmp_path):
    src = tmp_path / "lm.onnx"
    onnx.save(_gemm_lm(), str(src))
    report = api.variant(src, "int4", min_speedup=0, **FAST)
    (v,) = report.variants.variants
    assert v.status is VariantStatus.PASSED, v.reasons
    assert v.details["quantized_ops"] == {"com.microsoft::MatMulNBits": 2}
    assert v.details["rewrites"] == {"gemm": 1, "transpose": 1}
    assert any("argmax agreement is reported, not gated" in n for n in v.notes)
    assert v.worst("top1") is not None and "top1" not in v.budget


def test_int8_dynamic_on_a_model_without_matmul_is_unavailable(tmp_path):
    m = models.graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        {},
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
    )
    onnx.save(m, str(tmp_path / "relu.onnx"))
    (v,) = api.variant(tmp_path / "relu.onnx", "int8", min_speedup=0, **FAST).variants.variants
    assert v.status is VariantStatus.UNAVAILABLE and "nothing was quantised" in v.reasons[0]
    assert "use int8-static for CNNs" in v.reasons[1]


def test_ort_format_runs_and_says_which_mobile_providers_fit(classifier, classifier_files):
    report = api.variant(classifier, "ort", inputs_file=classifier_files / "clusters.npz", **FAST)
    (v,) = report.variants.variants
    assert v.status is VariantStatus.PASSED and v.path.endswith("classifier.ort") and v.min_speedup is None
    x, labels = models.cluster_inputs(6, seed=31)
    np.testing.assert_allclose(rerun(v.path, x), rerun(classifier, x), rtol=1e-5, atol=1e-5)
    mobile = v.details["mobile"]
    assert {e["ep"] for e in mobile["eps"]} == {"NNAPI", "CoreML NeuralNetwork", "CoreML MLProgram"}
    assert mobile["dynamic_inputs"] == ["x"] and mobile["recommendation"]
    # the kind's own table reaches both reports; the JSON keeps the facts in details only
    from onnxbridge.report import to_html, to_json, to_markdown

    assert {row[0] for row in v.table.rows} == {"NNAPI", "CoreML NeuralNetwork", "CoreML MLProgram", "recommendation"}
    assert "| mobile EP | suitable |" in to_markdown(report) and "<th>mobile EP</th>" in to_html(report)
    assert "table" not in json.loads(to_json(report))["variants"]["variants"][0]
