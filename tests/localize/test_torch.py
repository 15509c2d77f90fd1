"""debug SOURCE MODEL.onnx against PyTorch: the planted module is named with its file:line, not its neighbours."""

from __future__ import annotations

import json
import shlex

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from onnxbridge import api
from onnxbridge.localize.metadata import KEY_CALLS, props

from .conftest import scale_module_weight, src
from .torch_net import clean, line_of


@pytest.mark.route("torch.export/dynamo")
def test_clean_export_runs_right_at_another_size_and_keeps_its_metadata(exports):
    """Independent of the validator: ORT at batch 7 against eager; every node (after onnxsim) still
    names its module, and the shared module's second call is told apart."""
    model, _ = clean()
    x = np.random.default_rng(3).standard_normal((7, 16)).astype(np.float32)
    (got,) = ort.InferenceSession(str(exports["clean"]), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    with torch.no_grad():
        np.testing.assert_allclose(got, model(torch.from_numpy(x)).numpy(), atol=1e-4, rtol=1e-3)
    m = onnx.load(str(exports["clean"]))
    assert all(len(n.metadata_props) for n in m.graph.node)  # carried through onnxsim
    calls = {props(n).get(KEY_CALLS) for n in m.graph.node}
    assert '["", "shared@1"]' in calls and '["", "shared"]' in calls  # JSON, as all our own metadata


def test_a_weight_changed_in_one_layer_names_that_module_and_its_line(exports, tmp_path, run_cli):
    bad = onnx.load(str(exports["clean"]))
    scale_module_weight(bad, "blocks.2.fc", 1.02)
    onnx.save(bad, tmp_path / "bad.onnx")
    rep = tmp_path / "where.json"
    r = run_cli("debug", src("clean"), tmp_path / "bad.onnx", "--input", "x:batch,16", "--report", rep)
    assert r.code == 1, r.err
    assert "blocks.2.fc" in " ".join(r.out.split())
    loc = json.loads(rep.read_text())["localization"]
    first = loc["first"]
    assert (first["name"], first["class_name"], first["where"]) == ("blocks.2.fc", "Linear", "its own ops")
    assert first["call_site"]["file"].endswith("torch_net.py")
    assert first["call_site"]["line"] == line_of("BLOCK LINE")
    assert first["also_suspect"] == []
    by_name = {c["name"]: c for c in loc["layers"]}
    assert all(by_name[n]["passed"] for n in ("blocks.1.fc", "blocks.1.act", "blocks.1", "blocks.0"))
    assert by_name["blocks.2.fc"]["passed"] is False
    # the repro was written next to the report and reproduces on its own
    assert loc["repro"]["reproduces"] is True and loc["repro"]["nodes"] <= 2
    assert run_cli("validate", loc["repro"]["onnx"], "--expected", loc["repro"]["fixtures"]).code == 1


def test_a_right_model_with_awkward_inputs_raises_no_false_alarm(exports, tmp_path, run_cli):
    """Large, offset inputs (scores are relative) and the shared module's two calls, each compared."""
    from onnxbridge.parity.fixtures import write_fixtures

    x = (np.random.default_rng(5).standard_normal((4, 16)) * 40 + 25).astype(np.float32)
    write_fixtures(tmp_path / "in.npz", inputs=[("big", {"x": x})])
    r = run_cli(
        "debug", src("clean"), exports["clean"], "--input", "x:batch,16", "--inputs", tmp_path / "in.npz", "--json"
    )
    assert r.code == 0, r.err
    loc = json.loads(r.out)["localization"]
    assert loc["diverges"] is False and loc["case"] == "big"
    names = {c["name"] for c in loc["layers"]}
    assert {"shared", "shared@1", "pair.a", "pair.b", "head"} <= names
    assert all(c["passed"] for c in loc["layers"])


@pytest.mark.route("torchscript")
def test_the_torchscript_route_is_localised_through_its_scoped_names(exports, tmp_path):
    bad = onnx.load(str(exports["ts"]))
    scale_module_weight(bad, "blocks.2.fc", 1.02)
    path = tmp_path / "ts_bad.onnx"
    onnx.save(bad, path)
    first = api.debug(src("clean"), path, inputs=["x:batch,16"]).localization.first
    assert first.name == "blocks.2.fc" and first.call_site is None  # no source lines in TorchScript exports
    assert first.onnx_nodes == ("/blocks.2/fc/Gemm",)


def test_a_module_that_exports_differently_from_eager_is_named(run_cli):
    """``debug SOURCE`` alone: exported and simplified in memory, each a stage; the export breaks parity."""
    r = run_cli("debug", src("odd"), "--input", "x:batch,16", "--json")
    assert r.code == 1
    d = json.loads(r.out)
    loc = d["localization"]
    assert [s["stage"] for s in loc["stages"]] == ["exported", "simplified"]
    assert loc["broken_stage"] == "exported" and d["route"] == "torch.export/dynamo"
    first = loc["first"]
    assert (first["name"], first["class_name"], first["where"]) == ("odd", "ExportsDifferently", "its own ops")
    assert first["call_site"]["line"] == line_of("ODD LINE")
    assert first["call_site"]["code"] == "return x * 1.05  # ODD LINE"


def test_convert_that_fails_parity_names_the_debug_command_and_it_finds_the_module(run_cli, tmp_path):
    out = tmp_path / "odd.onnx"
    r = run_cli("convert", src("odd"), "-o", out, "--input", "x:batch,16", "--json")
    assert r.code == 1
    (note,) = [n for n in json.loads(r.out)["notes"] if "to see where it breaks" in n]
    command = shlex.split(note.split(": ", 1)[1])
    assert command[:4] == ["onnxbridge", "debug", src("odd"), str(out)] and "--input" in command
    r = run_cli(*command[1:], "--json")
    assert r.code == 1 and json.loads(r.out)["localization"]["first"]["name"] == "odd"
