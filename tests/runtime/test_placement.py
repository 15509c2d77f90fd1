"""Per-node placement parsed from ONNX Runtime's profile, and the --fallback policy."""

from __future__ import annotations

import copy
import os
import tempfile

import numpy as np
import pytest

from onnxbridge.errors import ProviderError, UsageError
from onnxbridge.runtime.placement import ProfileCapture, apply_fallback_policy, parse_profile
from tests.parity import onnx_models


def _real_cpu_profile() -> list[dict]:
    """The node events of a real CPU run of the MLP (onnxruntime writes them; we keep the list)."""
    import json

    import onnxruntime as ort

    so = ort.SessionOptions()
    so.enable_profiling = True
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every node
    folder = tempfile.mkdtemp()
    so.profile_file_prefix = os.path.join(folder, "p")
    sess = ort.InferenceSession(onnx_models.mlp().SerializeToString(), so, providers=["CPUExecutionProvider"])
    sess.run(None, {"x": np.ones((2, 16), np.float32)})
    path = sess.end_profiling()
    with open(path) as f:
        events = json.load(f)
    os.remove(path)
    os.rmdir(folder)
    return events


def _as_cuda_run(events: list[dict], cpu_nodes: set[str]) -> list[dict]:
    """The same events as a CUDA run in which ``cpu_nodes`` fell back to CPU, with the memory
    copies and shape arithmetic ONNX Runtime adds around them."""
    out = []
    for ev in copy.deepcopy(events):
        if ev.get("cat") == "Node" and ev["name"].endswith("_kernel_time"):
            node = ev["name"][: -len("_kernel_time")]
            if node not in cpu_nodes:
                ev["args"]["provider"] = "CUDAExecutionProvider"
        out.append(ev)

    def node(name, op, provider, out_type):
        return {
            "cat": "Node",
            "name": f"{name}_kernel_time",
            "args": {"op_name": op, "provider": provider, "output_type_shape": [out_type]},
        }

    out.append(node("Memcpy_token_1", "MemcpyToHost", "CUDAExecutionProvider", {"float": [2, 32]}))
    out.append(node("Memcpy_token_2", "MemcpyFromHost", "CUDAExecutionProvider", {"float": [2, 32]}))
    out.append(node("shape_of_x", "Shape", "CPUExecutionProvider", {"int64": [2]}))
    return out


def test_real_profile_parses_every_node_on_cpu():
    events = _real_cpu_profile()
    p = parse_profile(events, "CPUExecutionProvider")
    assert p.nodes == 5
    assert p.by_provider == {"CPUExecutionProvider": 5}
    assert p.by_op == {
        "Add": {"CPUExecutionProvider": 2},
        "MatMul": {"CPUExecutionProvider": 2},
        "Relu": {"CPUExecutionProvider": 1},
    }
    assert p.ok and p.fallback == ()


def test_fallback_nodes_are_listed_and_copies_and_shape_ops_are_not():
    events = _as_cuda_run(_real_cpu_profile(), cpu_nodes={"relu"})
    p = parse_profile(events, "CUDAExecutionProvider", policy="fail")
    assert not p.ok
    assert [(n.name, n.op_type, n.provider) for n in p.fallback] == [("relu", "Relu", "CPUExecutionProvider")]
    assert p.memcpy == 2
    assert p.shape_on_cpu == 1
    assert p.by_provider == {"CUDAExecutionProvider": 6, "CPUExecutionProvider": 2}
    assert "1 node(s) fell back from CUDAExecutionProvider (ops: Relu)" in p.summary()


def test_fallback_policy_fail_is_exit_2_naming_the_nodes_and_warn_is_a_note():
    p = parse_profile(_as_cuda_run(_real_cpu_profile(), {"relu", "mm2"}), "CUDAExecutionProvider")
    with pytest.raises(ProviderError) as e:
        apply_fallback_policy(p, "fail")
    assert e.value.exit_code == 2
    assert "relu (Relu on CPUExecutionProvider)" in e.value.message
    assert "mm2 (MatMul on CPUExecutionProvider)" in e.value.message
    assert "--fallback warn" in e.value.hint
    note = apply_fallback_policy(p, "warn")
    assert note.startswith("provider fallback: 2 of 8 node(s) did not run on CUDAExecutionProvider")
    assert apply_fallback_policy(parse_profile(_real_cpu_profile(), "CPUExecutionProvider"), "fail") is None
    with pytest.raises(UsageError):
        apply_fallback_policy(p, "ignore")


def test_profile_capture_removes_its_folder_and_stops_profiling(onnx_file):
    from onnxbridge.runtime.sessions import OrtRunner

    runner = OrtRunner(onnx_file("a.onnx", onnx_models.mlp()), "cpu", profile=True)
    folder = runner._capture._dir
    assert folder is not None and folder.is_dir()
    runner.run({"x": np.ones((1, 16), np.float32)})
    assert not folder.exists()
    first = runner.placement
    runner.run({"x": np.ones((4, 16), np.float32)})
    assert runner.placement is first
    assert runner.session.end_profiling() == ""  # profiling is off after the first run


def test_capture_without_a_run_reports_nothing(tmp_path):
    import onnxruntime as ort

    cap = ProfileCapture()
    sess = ort.InferenceSession(
        onnx_models.mlp().SerializeToString(), cap.options(), providers=["CPUExecutionProvider"]
    )
    p = cap.collect(sess, "CPUExecutionProvider")
    assert p is None or p.nodes == 0


def test_report_lists_placement_and_bad_fallback_flag_is_usage_error(run_cli, onnx_file, tmp_path):
    from tests.parity.conftest import flat, read_json

    a = onnx_file("a.onnx", onnx_models.mlp())
    out = tmp_path / "r.json"
    r = run_cli("validate", a, a, "--fallback", "fail", "--report", out)
    assert r.code == 0, r.err
    assert "node(s) ran: CPU" in flat(r.out)  # the terminal summary has a placement row
    placement = read_json(out)["validation"]["placement"]
    assert placement["target"] == "CPUExecutionProvider"
    assert placement["fallback"] == [] and placement["policy"] == "fail"
    assert sum(placement["by_provider"].values()) == placement["nodes"] > 0
    r = run_cli("validate", a, a, "--fallback", "sometimes")
    assert r.code == 2
