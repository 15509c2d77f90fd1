"""debug SOURCE MODEL.onnx against Keras: the planted layer is named, not its neighbours."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from onnxbridge import api

from .conftest import made_once

SRC = f"{Path(__file__).resolve().parent / 'keras_net.py'}:net"


@pytest.fixture(scope="session")
def keras_onnx(tmp_path_factory) -> Path:
    def make(folder: Path) -> None:
        report = api.convert(SRC, folder / "net.onnx", routes=["tf2onnx"], validate=False)
        assert report.conversion.route == "tf2onnx"

    return made_once(tmp_path_factory, "keras", make) / "net.onnx"


def _scale_private_copy(model: onnx.ModelProto, scope: str, factor: float) -> str:
    """Scale the weight of the first MatMul / Conv under ``scope`` through a private copy of it."""
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if f"/{scope}" in node.name and node.op_type in ("MatMul", "Gemm", "Conv"):
            k = next(k for k, i in enumerate(node.input) if i in inits)
            arr = numpy_helper.to_array(inits[node.input[k]]) * np.float32(factor)
            model.graph.initializer.append(numpy_helper.from_array(arr, node.input[k] + "_planted"))
            node.input[k] += "_planted"
            return node.name
    raise LookupError(scope)


@pytest.mark.route("tf2onnx")
def test_the_keras_export_matches_keras_at_another_batch(keras_onnx):
    import importlib.util

    spec = importlib.util.spec_from_file_location("keras_net_ref", SRC.rsplit(":", 1)[0])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x = np.random.default_rng(4).standard_normal((5, 8, 8, 3)).astype(np.float32)
    (got,) = ort.InferenceSession(str(keras_onnx), providers=["CPUExecutionProvider"]).run(None, {"img": x})
    np.testing.assert_allclose(got, np.asarray(module.net()(x, training=False)), atol=1e-4, rtol=1e-3)


def test_clean_keras_model_passes_every_layer(keras_onnx, run_cli):
    r = run_cli("debug", SRC, keras_onnx, "--json")
    assert r.code == 0, r.err
    loc = json.loads(r.out)["localization"]
    assert loc["direction"] == "keras" and loc["diverges"] is False
    names = {c["name"] for c in loc["layers"]}
    assert {"conv1", "bn1", "shared", "shared@1", "block/inner_a", "block/inner_b", "head"} <= names
    assert all(c["passed"] for c in loc["layers"])


@pytest.mark.parametrize(
    ("scope", "layer", "neighbours"),
    [
        ("inner_b", "block/inner_b", ("block/inner_a", "mid", "shared@1")),
        ("conv2", "conv2", ("conv1", "bn1", "relu1")),
    ],
)
def test_a_weight_changed_in_one_layer_names_that_layer(keras_onnx, tmp_path, scope, layer, neighbours):
    bad = onnx.load(str(keras_onnx))
    _scale_private_copy(bad, scope, 1.05)
    onnx.save(bad, tmp_path / "bad.onnx")
    loc = api.debug(SRC, tmp_path / "bad.onnx", repro_dir=tmp_path).localization
    assert (loc.first.name, loc.first.kind, loc.first.where) == (layer, "layer", "its own ops")
    by_name = {c.name: c for c in loc.layers}
    assert all(by_name[n].passed for n in neighbours if n in by_name)
    assert loc.repro is not None and loc.repro.reproduces
