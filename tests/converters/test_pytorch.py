"""The PyTorch path end to end: convert real architectures, then check the numbers independently."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import onnxbridge
from tests.conftest import files_in

MODELS = Path(__file__).resolve().parent.parent / "models" / "torch_models.py"


def src(name: str) -> str:
    return f"{MODELS}:{name}"


def input_dims(path: Path) -> dict[str, list]:
    model = onnx.load(str(path))
    return {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}


def ort_run(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def case_labels(report) -> list[str]:
    return [c.label for c in report.validation.cases]


@pytest.mark.route("torch.export/dynamo")
def test_cnn_with_batchnorm_dynamic_batch(tmp_path):
    out = tmp_path / "cnn.onnx"
    report = onnxbridge.convert(src("cnn"), out, inputs=["pixel_values:batch,3,32,32"])
    assert report.passed is True
    assert report.conversion.route == "torch.export/dynamo"
    assert input_dims(out) == {"pixel_values": ["batch", 3, 32, 32]}
    assert {"batch=1", "batch=5"} <= set(case_labels(report))
    # independent of our validator: run the file on ORT at a batch size never used before
    model, _ = torch_models().cnn()
    x = np.random.default_rng(7).standard_normal((3, 3, 32, 32)).astype(np.float32)
    (got,) = ort_run(out, {"pixel_values": x})
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-3)


@pytest.mark.route("torchscript")
def test_lstm_falls_back_to_torchscript_with_dynamic_seq(tmp_path):
    out = tmp_path / "lstm.onnx"
    report = onnxbridge.convert(src("lstm"), out, inputs=["x:batch,seq,8"])
    assert report.passed is True
    attempts = report.conversion.attempts
    assert [a.route for a in attempts] == ["torch.export/dynamo", "torchscript"]
    assert not attempts[0].ok and "declared dynamic" in attempts[0].failing_op
    assert attempts[1].ok and report.conversion.route == "torchscript"
    assert {"seq=1", "seq=11", "batch=1"} <= set(case_labels(report))
    assert report.conversion.output_names == ("output_0", "output_1")
    x = np.random.default_rng(1).standard_normal((4, 13, 8)).astype(np.float32)
    got = ort_run(out, {"x": x})
    with torch.no_grad():
        ref = torch_models().lstm()(torch.from_numpy(x))
    np.testing.assert_allclose(got[0], ref[0].numpy(), atol=1e-4, rtol=1e-3)
    np.testing.assert_allclose(got[1], ref[1].numpy(), atol=1e-4, rtol=1e-3)


def test_transformer_encoder(tmp_path):
    out = tmp_path / "enc.onnx"
    report = onnxbridge.convert(src("transformer_encoder"), out, inputs=["src:batch,seq,16"])
    assert report.passed is True, report.validation.summary()
    assert input_dims(out) == {"src": ["batch", "seq", 16]}


@pytest.mark.slow
def test_tiny_bert_keyword_inputs(tmp_path):
    out = tmp_path / "bert.onnx"
    report = onnxbridge.convert(
        src("bert"), out, inputs=["input_ids:batch,seq:int64", "attention_mask:batch,seq:int64"]
    )
    assert report.passed is True, report.validation.summary()
    assert report.conversion.output_names == ("last_hidden_state", "pooler_output")
    assert [o.name for o in onnx.load(str(out)).graph.output] == ["last_hidden_state", "pooler_output"]
    assert {"batch=1", "seq=1", "all axes larger"} <= set(case_labels(report))
    # token ids were drawn inside the vocabulary (200): an out-of-range id would make Gather fail
    assert all(c.error is None for c in report.validation.cases if c.kind.value != "source_limit")
    # the position table (64) bounds seq: torch.export recorded it, and seq=65 is the source's own limit
    (seq,) = [a for a in report.validation.axes if a.axis == "seq"]
    assert seq.exported == (2, 64) and seq.outcome.value == "source_limit"


def test_token_ids_use_the_table_each_input_feeds():
    """BERT has a 2-row token-type table beside its 200-row word table: each input gets its own range."""
    from onnxbridge.api import load_source

    _, loaded = load_source(src("bert"), inputs=["input_ids:batch,seq:int64", "token_type_ids:batch,seq:int64"])
    assert loaded.domain.ids.high("input_ids") == 200 and loaded.domain.ids.high("token_type_ids") == 2
    assert loaded.example["input_ids"].max() >= 2  # not squeezed into the smallest table


@pytest.mark.slow
def test_tiny_gpt2(tmp_path):
    out = tmp_path / "gpt2.onnx"
    report = onnxbridge.convert(src("gpt2"), out, inputs=["input_ids:batch,seq:int64"])
    assert report.passed is True, report.validation.summary()
    assert report.conversion.output_names == ("logits",)
    ids = np.random.default_rng(3).integers(0, 200, size=(1, 9)).astype(np.int64)
    (got,) = ort_run(out, {"input_ids": ids})
    with torch.no_grad():
        ref = torch_models().gpt2()(input_ids=torch.from_numpy(ids)).logits.numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-3)


@pytest.mark.route("torchscript")
@pytest.mark.slow
def test_torchscript_route_takes_keyword_inputs_of_transformers_models(tmp_path):
    """transformers 5 forwards fail under the TorchScript exporter when inputs are bound positionally
    ("got multiple values for argument 'use_cache'"); our adapter passes them by keyword."""
    out = tmp_path / "bert_ts.onnx"
    report = onnxbridge.convert(
        src("bert"),
        out,
        inputs=["input_ids:batch,seq:int64", "attention_mask:batch,seq:int64"],
        routes=["torchscript"],
        validate=False,
        simplify=False,
    )
    (attempt,) = report.conversion.attempts
    assert attempt.ok and attempt.exported, attempt.error
    assert [i.name for i in onnx.load(str(out)).graph.input] == ["input_ids", "attention_mask"]


@pytest.mark.route("torchscript")
def test_torchscript_export_leaves_a_keyword_model_in_eval_mode():
    """The keyword adapter is a new (training) Module: export restored *its* mode onto the user's model,
    turning dropout on in every later reference run."""
    from onnxbridge.api import load_source
    from onnxbridge.converters.base import ExportRequest
    from onnxbridge.converters.torch_routes import TorchScriptRoute

    _, loaded = load_source(src("bert"), inputs=["input_ids:batch,seq:int64", "attention_mask:batch,seq:int64"])
    TorchScriptRoute().export(loaded, ExportRequest())
    assert not any(m.training for m in loaded.model.modules())


def test_keyword_inputs_and_nested_dict_outputs(tmp_path):
    out = tmp_path / "nested.onnx"
    report = onnxbridge.convert(src("nested_outputs"), out, inputs=["features:batch,6", "scale:batch,1"])
    assert report.passed is True
    assert report.conversion.output_names == ("scores", "extras.0", "extras.1")
    feats = np.ones((3, 6), np.float32)
    scale = np.full((3, 1), 2.0, np.float32)
    got = dict(zip(report.conversion.output_names, ort_run(out, {"features": feats, "scale": scale})))
    model, _ = torch_models().nested_outputs()
    with torch.no_grad():
        ref = model(features=torch.from_numpy(feats), scale=torch.from_numpy(scale))
    np.testing.assert_allclose(got["scores"], ref["scores"].numpy(), atol=1e-5)
    np.testing.assert_allclose(got["extras.1"], np.ones(3), atol=1e-6)


def test_example_inputs_from_factory_give_static_shapes(tmp_path):
    """Without --input, the factory's example inputs fix names, dtypes and shapes."""
    out = tmp_path / "static.onnx"
    report = onnxbridge.convert(src("nested_outputs"), out)
    assert report.passed is True
    assert input_dims(out) == {"features": [2, 6], "scale": [2, 1]}
    assert case_labels(report) == ["seed=0", "seed=1", "seed=2"]


@pytest.mark.route("torch.export/dynamo")
@pytest.mark.route("torchscript")
def test_data_dependent_control_flow_never_passes(tmp_path, run_cli):
    out = tmp_path / "branchy.onnx"
    res = run_cli("convert", src("Branchy"), "-o", out, "--input", "x:batch,4")
    assert res.code == 3, res.err
    assert "data-dependent control flow" in res.err
    assert "torch.export/dynamo" in res.err and "torchscript" in res.err
    assert "Traceback" not in res.err
    assert files_in(tmp_path) == set()  # no partial output


def test_data_dependent_control_flow_refused_by_torchscript_alone(tmp_path, run_cli):
    res = run_cli(
        "convert", src("Branchy"), "-o", tmp_path / "b.onnx", "--input", "x:batch,4", "--route", "torchscript"
    )
    assert res.code == 3
    assert "data-dependent control flow" in res.err and "froze one branch" in res.err


def test_report_names_the_winning_route_and_why_others_lost(tmp_path, run_cli):
    out, rep = tmp_path / "shy.onnx", tmp_path / "shy.json"
    res = run_cli("convert", src("ExportShy"), "-o", out, "--input", "x:batch,4", "--report", rep)
    assert res.code == 0, res.err
    data = json.loads(rep.read_text())
    assert data["route"] == "torchscript"
    first = data["routes_tried"][0]
    assert first["route"] == "torch.export/dynamo" and first["ok"] is False
    assert "does not support torch.export" in first["error"]
    assert data["validation"]["passed"] is True
    # the class was instantiated in training mode: the report says it was switched to eval
    assert any("eval mode" in n for n in data["notes"])


@pytest.mark.route("torch.export/dynamo")
def test_pt2_exported_program_source(tmp_path):
    model, (x,) = torch_models().cnn()
    batch = torch.export.Dim("batch", min=1, max=64)
    ep = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    pt2 = tmp_path / "cnn.pt2"
    torch.export.save(ep, str(pt2))
    out = tmp_path / "from_pt2.onnx"
    report = onnxbridge.convert(str(pt2), out, inputs=["pixel_values:batch,3,32,32"])
    assert report.passed is True, report.validation.summary()
    assert report.conversion.route == "torch.export/dynamo"
    assert input_dims(out)["pixel_values"][0] == "batch"


def test_json_output_is_clean_json(tmp_path, run_cli):
    """Exporters print progress; --json must still be parseable on its own."""
    res = run_cli("convert", src("nested_outputs"), "-o", tmp_path / "n.onnx", "--json", "--no-simplify")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["command"] == "convert" and data["framework"] == "pytorch"
    assert data["validation"]["cases"][0]["outputs"][0]["name"] == "scores"
    assert data["simplify"] is None and data["passed"] is True


def torch_models():
    import importlib.util

    spec = importlib.util.spec_from_file_location("torch_models_for_tests", MODELS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
