"""Models whose weights are in external data (``convert --external-data``, large models): the module calls are
stamped on the file the dynamo route writes, node metadata survives the onnx-ir simplification, and ``debug``
localises such files (validated by path, weights read in only for the search)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from onnxbridge import api
from onnxbridge.localize.metadata import KEY_CALLS, KEY_SCOPES, props
from onnxbridge.onnxio import uses_external_data

from .conftest import made_once, scale_module_weight, src
from .torch_net import clean, line_of


@pytest.fixture(scope="module")
def external(tmp_path_factory) -> Path:
    """The clean net through ``onnxbridge convert --external-data`` (the dynamo route saves to a file)."""

    def make(folder: Path) -> None:
        report = api.convert(
            src("clean"), folder / "ext.onnx", inputs=["x:batch,16"], routes=["torch.export/dynamo"], external_data=True
        )
        assert report.passed and report.simplify.applied

    return made_once(tmp_path_factory, "external", make) / "ext.onnx"


def _save_external(model: onnx.ModelProto, path: Path) -> None:
    onnx.save(model, str(path), save_as_external_data=True, location=path.name + ".data", size_threshold=0)


@pytest.mark.route("torch.export/dynamo")
def test_the_file_the_dynamo_route_writes_carries_the_module_calls(external):
    model = onnx.load(str(external), load_external_data=False)
    assert uses_external_data(model) and (external.parent / "ext.onnx.data").is_file()
    assert all(len(n.metadata_props) for n in model.graph.node)  # stamped on the file, kept through onnx-ir
    calls = {props(n).get(KEY_CALLS) for n in model.graph.node}
    assert '["", "shared@1"]' in calls and '["", "shared"]' in calls  # JSON, as all our own metadata
    # independent of the validator: ONNX Runtime at batch 7 against eager
    model, _ = clean()
    x = np.random.default_rng(4).standard_normal((7, 16)).astype(np.float32)
    (got,) = ort.InferenceSession(str(external), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    with torch.no_grad():
        np.testing.assert_allclose(got, model(torch.from_numpy(x)).numpy(), atol=1e-4, rtol=1e-3)


@pytest.mark.route("torch.export/dynamo")
def test_a_planted_weight_in_an_external_data_model_is_found(external, tmp_path, run_cli):
    bad = onnx.load(str(external))  # weights read in
    scale_module_weight(bad, "blocks.2.fc", 1.02)
    _save_external(bad, tmp_path / "bad.onnx")
    rep = tmp_path / "where.json"
    r = run_cli("debug", src("clean"), tmp_path / "bad.onnx", "--input", "x:batch,16", "--report", rep)
    assert r.code == 1, r.err
    loc = json.loads(rep.read_text())["localization"]
    assert loc["first"]["name"] == "blocks.2.fc" and loc["first"]["call_site"]["line"] == line_of("BLOCK LINE")
    assert all(c["passed"] for c in loc["layers"] if c["name"] in ("blocks.1.fc", "blocks.0"))
    assert loc["repro"]["reproduces"] is True
    assert run_cli("validate", loc["repro"]["onnx"], "--expected", loc["repro"]["fixtures"]).code == 1
    # ONNX vs ONNX, both with external data: the reference file too is read by path
    again = api.debug(str(external), tmp_path / "bad.onnx")
    assert again.localization.broken_stage == "bad" and again.localization.first.name.startswith("node_")


def test_simplifying_an_external_data_model_keeps_node_metadata(tmp_path, monkeypatch):
    """An optimizer that drops node metadata (as onnxsim does) on the file-to-file path: it comes back."""
    from onnxbridge.transforms import simplify

    w = numpy_helper.from_array(np.eye(64, dtype=np.float32) * 2, "w")  # large enough to stay external
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="node_linear"),
        helper.make_node("Relu", ["h"], ["y"], name="node_relu"),
    ]
    for n, scope in zip(nodes, ("['', 'fc', 'linear']", "['', 'act', 'relu']")):
        n.metadata_props.add(key=KEY_SCOPES, value=scope)
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 64])],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    _save_external(model, tmp_path / "m.onnx")
    real = simplify._optimize_ir

    def dropping(src_path: Path, dst: Path) -> None:
        real(src_path, dst)
        out = onnx.load(str(dst), load_external_data=False)
        for n in out.graph.node:
            del n.metadata_props[:]
        onnx.save(out, str(dst))

    monkeypatch.setattr(simplify, "_optimize_ir", dropping)
    (tmp_path / "s").mkdir()
    kept, result = simplify.simplify_file(tmp_path / "m.onnx", tmp_path / "s" / "m.onnx", None)
    assert result.applied and kept == tmp_path / "s" / "m.onnx"
    out = onnx.load(str(kept), load_external_data=False)
    assert uses_external_data(out)  # the graph was re-saved alone: the weights stay in their file
    assert {n.name: props(n)[KEY_SCOPES] for n in out.graph.node} == {
        "node_linear": "['', 'fc', 'linear']",
        "node_relu": "['', 'act', 'relu']",
    }
    x = np.arange(128, dtype=np.float32).reshape(2, 64) - 60
    (y,) = ort.InferenceSession(str(kept), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(y, np.maximum(x * 2, 0))
