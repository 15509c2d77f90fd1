"""The route loop's checks of a product: the structural check's CPU session is the one the quick parity
check runs (one session per product, never another product's)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from onnxbridge.converters.base import ExportedModel, LoadedModel


def _times(k: float):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
    k_init = helper.make_tensor("k", TensorProto.FLOAT, [], [k])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "k"], ["y"])], f"times{k}", [x], [y], [k_init])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


class _Route:
    def __init__(self, name, model):
        self.name, self.model = name, model

    def export(self, loaded, request):
        return ExportedModel(self.model, ("y",))


class _Converter:
    framework = "onnx"

    def __init__(self, routes):
        self._routes = routes

    def routes(self, loaded):
        return self._routes


class _Twice:
    name, output_names = "twice", ("y",)

    def run(self, feeds):
        return [feeds["x"] * 2]


def _export_counting(monkeypatch, tmp_path, routes, **options):
    from onnxbridge.api._convert import _export
    from onnxbridge.options import ConvertOptions
    from onnxbridge.runtime import sessions

    opened = []

    class Counting(sessions.OrtRunner):
        def __init__(self, model, *args, **kwargs):
            opened.append(model.graph.name)
            super().__init__(model, *args, **kwargs)

    monkeypatch.setattr(sessions, "OrtRunner", Counting)
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    loaded = LoadedModel("onnx", "m", None, (), {"x": x})
    product, result = _export(_Converter(routes), loaded, _Twice(), ConvertOptions(**options), tmp_path / "m.onnx")
    return product, result, opened


def test_parity_runs_on_the_session_the_structural_check_opened(monkeypatch, tmp_path):
    """Before: each product that loaded was given a second CPU session for the quick parity check."""
    routes = [_Route("wrong", _times(3.0)), _Route("right", _times(2.0))]
    product, result, opened = _export_counting(monkeypatch, tmp_path, routes)
    assert result.route == "right" and [a.parity for a in result.attempts] == [False, True]
    assert opened == ["times3.0", "times2.0"]  # one session per product, each on its own product


def test_without_validation_one_session_per_product_and_no_parity(monkeypatch, tmp_path):
    routes = [_Route("wrong", _times(3.0)), _Route("right", _times(2.0))]
    product, result, opened = _export_counting(monkeypatch, tmp_path, routes, validate=False)
    assert result.route == "wrong" and result.attempts[0].parity is None
    assert opened == ["times3.0"]
