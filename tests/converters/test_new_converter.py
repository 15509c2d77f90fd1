"""The recipe of docs/architecture.md, followed: a throwaway converter in one new module (a typed state,
one route, a reference runner), registered through the entry-point mechanism with one line, converts and
validates a tiny model like a built-in; its capabilities are found as protocols, not by name."""

from __future__ import annotations

import importlib
import sys
import textwrap
from importlib.metadata import EntryPoint

import numpy as np
import pytest

MODULE = '''\
"""A throwaway framework: ``.affine`` files (an npz of w, b) computing tanh(x @ w + b)."""

from dataclasses import dataclass

import numpy as np

from onnxbridge.converters.base import ExportedModel, InputDomain, SourceModel, axis_sizes, merge_specs
from onnxbridge.parity.inputs import generate_inputs
from onnxbridge.specs import TensorSpec


@dataclass(frozen=True)
class AffineState:
    w: np.ndarray
    b: np.ndarray


class AffineRunner:
    name = "affine (numpy)"
    output_names = ("y",)

    def __init__(self, state):
        self.state = state

    def run(self, feeds):
        return [np.tanh(feeds["x"] @ self.state.w + self.state.b).astype(np.float32)]


class AffineRoute:
    name = "affine/helper"

    def export(self, loaded, request):
        from onnx import TensorProto, helper, numpy_helper

        s = loaded.state
        graph = helper.make_graph(
            [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["z"]),
             helper.make_node("Tanh", ["z"], ["y"])], "affine",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", s.w.shape[0]])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", s.w.shape[1]])],
            [numpy_helper.from_array(s.w, "w"), numpy_helper.from_array(s.b, "b")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", request.opset or 17)])
        model.ir_version = 9
        return ExportedModel(model, ("y",))


class AffineConverter:
    framework = "affine"
    route_names = ("affine/helper",)
    suffixes = (".affine",)

    def load(self, ref, specs=(), *, trust=False, obj=None):
        with np.load(ref.path) as f:
            state = AffineState(f["w"].astype(np.float32), f["b"].astype(np.float32))
        specs = merge_specs((TensorSpec("x", ("batch", state.w.shape[0])),), specs, ref.text)
        sizes = axis_sizes(specs)
        domain = InputDomain.of(specs, sizes, None, generate_inputs(specs, sizes, seed=0))
        return SourceModel(self.framework, ref.text, None, domain, state)

    def routes(self, loaded):
        return [AffineRoute()]

    def reference_runner(self, loaded):
        return AffineRunner(loaded.state)

    @staticmethod
    def failing_op(e):
        return "MatMul" if "MatMul" in str(e) else None
'''


@pytest.fixture
def affine(tmp_path, monkeypatch):
    """The module on sys.path and a default registry holding the built-ins plus its entry point."""
    from onnxbridge.converters import registry as registry_module
    from onnxbridge.converters.registry import BUILTIN_FRAMEWORKS, ConverterRegistry

    (tmp_path / "onnxbridge_affine.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = ConverterRegistry()
    for info, target in BUILTIN_FRAMEWORKS:
        reg.register(info.name, target, info, origin="built-in")
    # the one registration line: [project.entry-points."onnxbridge.converters"] affine = "onnxbridge_affine:..."
    reg.load_entry_points([EntryPoint("affine", "onnxbridge_affine:AffineConverter", "onnxbridge.converters")])
    monkeypatch.setattr(registry_module, "_DEFAULT", reg)
    yield reg
    sys.modules.pop("onnxbridge_affine", None)


def test_a_new_converter_converts_and_validates_like_a_builtin(affine, tmp_path):
    import onnxbridge
    from onnxbridge.converters.base import Converter, LocalizesLayers, ReportsFailingOp, TakesTask
    from onnxbridge.runtime.sessions import OrtRunner

    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    src = tmp_path / "m.affine"
    with open(src, "wb") as f:  # np.savez would add .npz to a str path
        np.savez(f, w=w, b=b)

    converter = affine.get("affine")()
    assert isinstance(converter, Converter) and isinstance(converter, ReportsFailingOp)
    assert not isinstance(converter, TakesTask) and not isinstance(converter, LocalizesLayers)

    report = onnxbridge.convert(src, tmp_path / "m.onnx", provider="cpu")
    assert report.passed is True and report.framework == "affine", report.validation.summary()
    assert report.conversion.route == "affine/helper"
    assert {c.label for c in report.validation.cases} >= {"seed=0", "batch=1"}  # the sweep ran on its domain

    x = rng.normal(size=(13, 5)).astype(np.float32)  # a batch validation did not use
    (got,) = OrtRunner(tmp_path / "m.onnx", "cpu").run({"x": x})
    np.testing.assert_allclose(got, np.tanh(x @ w + b), atol=1e-5, rtol=1e-4)

    # a wrong product is caught by the same check: validate against a file with another bias
    with open(src, "wb") as f:
        np.savez(f, w=w, b=b + 0.1)
    wrong = onnxbridge.validate(src, tmp_path / "m.onnx", provider="cpu")
    assert wrong.passed is False


def test_the_new_framework_is_listed_with_its_routes(affine):
    from onnxbridge.api._frameworks import frameworks

    listing = {f.name: f for f in frameworks()}
    assert listing["affine"].routes == ("affine/helper",) and listing["affine"].origin == "entry point"
    assert importlib.import_module("onnxbridge_affine").AffineConverter.suffixes == (".affine",)
