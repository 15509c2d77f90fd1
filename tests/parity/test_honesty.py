"""The validator's own honesty: nothing compared is not a pass, tolerances are loosened only where the
numbers are narrow, route selection judges as the final validation does, an unknown placement is not a
clean one, non-finite figures never break JSON. Each failed before its fix (see the docstrings)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxbridge import api
from onnxbridge.errors import ProviderError
from onnxbridge.runtime.placement import apply_fallback_policy, parse_profile

from . import onnx_models
from .conftest import read_json


def _rows_of_three():
    """x: [batch, 4] -> Reshape to [3, -1]: runs only when 4 * batch divides by 3 (never in the sweep)."""
    shape = numpy_helper.from_array(np.array([3, -1], np.int64), "shape")
    return onnx_models._model(
        [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, None])],
        [shape],
    )


def test_simplify_with_nothing_compared_does_not_pass(onnx_file, tmp_path):
    """Before: every case failed on the unsimplified model too, each was called 'not the simplification's
    fault', and the report said 'parity passed' on zero compared cases."""
    model = onnx_file("rows3.onnx", _rows_of_three())
    report = api.simplify(model, tmp_path / "out.onnx")
    s = report.simplify
    assert s.parity_passed is not True
    assert not s.applied and "parity could not be checked" in s.reason
    assert "the unsimplified model" in s.reason


def test_zero_compared_cases_is_never_a_pass():
    from onnxbridge.results import CaseKind, ParityCase, ParityReport

    listed = ParityCase("seq=1", 1, {}, (), False, "the source cannot run this input", CaseKind.SOURCE_LIMIT, "seq", 1)
    report = ParityReport("r", "cpu", "CPUExecutionProvider", (), False, (listed,), {})
    assert report.compared == 0 and report.summary().startswith("parity NOT CHECKED")


def _half_and_full(off: float = 0.0):
    """y16 = x * 3 computed in float16 (casts at both ends), y32 = x * 2 + off in float32."""
    nodes = [
        helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16),
        helper.make_node("Mul", ["x16", "three"], ["t16"]),
        helper.make_node("Cast", ["t16"], ["y16"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x", "two"], ["x2"]),
        helper.make_node("Add", ["x2", "off"], ["y32"]),
    ]
    return onnx_models._model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [
            helper.make_tensor_value_info("y16", TensorProto.FLOAT, ["batch", 8]),
            helper.make_tensor_value_info("y32", TensorProto.FLOAT, ["batch", 8]),
        ],
        [
            numpy_helper.from_array(np.array(3.0, np.float16), "three"),
            numpy_helper.from_array(np.array(2.0, np.float32), "two"),
            numpy_helper.from_array(np.array(off, np.float32), "off"),
        ],
    )


def test_float16_parts_loosen_only_the_outputs_that_depend_on_them(onnx_file, tmp_path, run_cli):
    """Before: one float16 cast anywhere judged *every* output at float16 tolerances (1e-2), so an
    all-float32 output off by 5e-3 passed."""
    good, bad = onnx_file("good.onnx", _half_and_full()), onnx_file("bad.onnx", _half_and_full(off=5e-3))
    rep = tmp_path / "r.json"
    r = run_cli("validate", good, bad, "--report", rep)
    assert r.code == 1, r.out
    v = read_json(rep)["validation"]
    assert v["tolerances"]["y16"]["from"] == "float16 default" and v["tolerances"]["y32"]["from"] == "float32 default"
    failing = {o["name"] for c in v["cases"] for o in c["outputs"] if not o["passed"]}
    assert failing == {"y32"}
    assert any("judged at its default tolerances (y16)" in n for n in v["notes"])
    assert run_cli("validate", good, good).code == 0


def test_route_selection_judges_with_the_final_tolerances():
    """The quick parity check that picks a route takes --atol/--tol and the compute dtype, as the final
    validation does (a route within the user's tolerance is not thrown away for a default one)."""
    from onnxbridge.api._convert import _quick_parity
    from onnxbridge.converters.base import ExportedModel, LoadedModel
    from onnxbridge.options import Tolerances

    model = _half_and_full()
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)

    class Shifted:
        name, output_names = "shifted", ("y16", "y32")

        def run(self, feeds):
            return [feeds["x"] * 3, feeds["x"] * 2 + 5e-3]

    loaded = LoadedModel("onnx", "m", model, (), {"x": x})
    product = ExportedModel(model, ("y16", "y32"))
    assert "y32" in _quick_parity(Shifted(), loaded, Tolerances())(product)
    assert _quick_parity(Shifted(), loaded, Tolerances(atol=1e-2))(product) is None
    assert _quick_parity(Shifted(), loaded, Tolerances.build(tolerances=["y32=1e-2"]))(product) is None


def test_fallback_fail_with_no_profile_is_unknown_not_clean():
    """Before: no profile read (placement None) passed --fallback fail silently."""
    with pytest.raises(ProviderError, match="where the nodes ran is unknown"):
        apply_fallback_policy(None, "fail")
    assert apply_fallback_policy(None, "warn") is None


def _node(name, op, provider, out_type):
    return {
        "cat": "Node",
        "name": f"{name}_kernel_time",
        "args": {"op_name": op, "provider": provider, "output_type_shape": [out_type]},
    }


def test_only_shape_arithmetic_may_stay_on_the_cpu():
    """Before: any node with a small int64 output on the CPU (an ArgMax of the predictions) counted as
    shape arithmetic, not as a fallback."""
    events = [
        _node("mm", "MatMul", "CUDAExecutionProvider", {"float": [2, 10]}),
        _node("shape_of_x", "Shape", "CPUExecutionProvider", {"int64": [2]}),
        _node("gather_dim", "Gather", "CPUExecutionProvider", {"int64": [1]}),
        _node("argmax", "ArgMax", "CPUExecutionProvider", {"int64": [2]}),
    ]
    p = parse_profile(events, "CUDAExecutionProvider", "fail")
    assert [n.name for n in p.fallback] == ["argmax"] and p.shape_on_cpu == 2
    with pytest.raises(ProviderError, match="argmax"):
        apply_fallback_policy(p, "fail")


def test_graph_lineage_tells_shape_arithmetic_from_compute():
    """A Gather of token ids is compute even with a small int64 output; one of a Shape is not."""
    from onnxbridge.runtime.placement import shape_nodes

    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="dim0"),
        helper.make_node("Gather", ["ids", "zero"], ["first"], name="first_id"),
    ]
    model = onnx_models._model(
        nodes,
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 4]),
            helper.make_tensor_value_info("ids", TensorProto.INT64, [3]),
        ],
        [
            helper.make_tensor_value_info("n", TensorProto.INT64, []),
            helper.make_tensor_value_info("first", TensorProto.INT64, []),
        ],
        [numpy_helper.from_array(np.array(0, np.int64), "zero")],
    )
    shapes, names = shape_nodes(model)
    assert shapes == {"shape", "dim0"} and names == {"shape", "dim0", "first_id"}
    events = [
        _node("dim0", "Gather", "CPUExecutionProvider", {"int64": []}),
        _node("first_id", "Gather", "CPUExecutionProvider", {"int64": []}),
    ]
    p = parse_profile(events, "CUDAExecutionProvider", "fail", (shapes, names))
    assert [n.name for n in p.fallback] == ["first_id"]


def test_bench_json_survives_non_finite_figures():
    from onnxbridge.report import to_json
    from onnxbridge.results import BenchCase, BenchReport, BenchSettings, LatencyStats, Report

    stats = LatencyStats(3, 0.0, 0.0, float("nan"), float("inf"), 0.0, float("nan"), 0.0, float("inf"))
    case = BenchCase(
        "onnxruntime", "cpu", "CPUExecutionProvider", 1, {"x": (1, 4)}, False, stats, speedup_vs_reference=float("inf")
    )
    settings = BenchSettings(1, 3, None, None, "all", "auto", 0)
    d = json.loads(to_json(Report(command="bench", bench=BenchReport((case,), settings=settings))))
    assert d["bench"]["speedup_vs_reference"] is None and d["bench"]["latency_ms"]["p90"] is None
    from tests.test_report_schema import check

    check("report.schema.json", d)
