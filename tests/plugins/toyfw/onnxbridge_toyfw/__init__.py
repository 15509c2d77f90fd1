"""toyfw: a numpy-expression model format, and its onnxbridge converter plugin.

A model is JSON: named inputs with dims (a name is a dynamic axis), float32 weights, a program of
``[op, operand..., result]`` steps and the names of its outputs. ``gelu`` is exported with the tanh
approximation while numpy computes the exact erf form: a converter bug on purpose, so that tests can
see a wrong export fail parity.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from onnxbridge.converters.base import ExportedModel, ExportRequest, LoadedModel, axis_sizes, merge_specs
from onnxbridge.errors import InputError, UsageError
from onnxbridge.parity.inputs import generate_inputs
from onnxbridge.sources import SourceRef, load_python_object, resolve_factory
from onnxbridge.specs import TensorSpec

__all__ = ["ToyModel", "ToyConverter"]

_BINARY = {"matmul": np.matmul, "add": np.add, "mul": np.multiply}
_ERF = np.vectorize(math.erf, otypes=[np.float32])
_UNARY = {
    "tanh": np.tanh,
    "relu": lambda a: np.maximum(a, 0),
    "gelu": lambda a: (0.5 * a * (1 + _ERF(a / math.sqrt(2)))).astype(np.float32),
}


class ToyModel:
    """A toyfw program; ``evaluate`` runs it with numpy."""

    def __init__(self, inputs: list[dict], weights: dict[str, Any], program: list[list[str]], outputs: list[str]):
        self.inputs = inputs
        self.weights = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        self.program = program
        self.outputs = outputs

    @classmethod
    def read(cls, path: Path) -> ToyModel:
        try:
            data = json.loads(path.read_text())
            return cls(data["inputs"], data["weights"], data["program"], data["outputs"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(
                f"{path} is not a toyfw model ({type(e).__name__}: {e})",
                "a toyfw file is JSON with inputs, weights, program and outputs",
            ) from e

    def specs(self) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(i["name"], tuple(i["dims"]), "float32") for i in self.inputs)

    def evaluate(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        env = {**self.weights, **feeds}
        for op, *args in self.program:
            *operands, result = args
            fn = _BINARY.get(op) or _UNARY[op]
            env[result] = np.asarray(fn(*(env[a] for a in operands)), dtype=np.float32)
        return [env[o] for o in self.outputs]


class ToyRunner:
    """numpy as the reference runner."""

    name = "toyfw (numpy)"

    def __init__(self, model: ToyModel) -> None:
        self.model = model

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.model.outputs)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.model.evaluate(feeds)


class HelperRoute:
    """The program as ONNX nodes, built with onnx.helper."""

    name = "toyfw/helper"

    def export(self, loaded: LoadedModel, request: ExportRequest) -> ExportedModel:
        from onnx import TensorProto, helper, numpy_helper

        model: ToyModel = loaded.model
        nodes = []
        for op, *args in model.program:
            *operands, result = args
            if op == "gelu":  # the tanh approximation, not what numpy computes
                nodes.append(helper.make_node("Gelu", operands, [result], approximate="tanh"))
            else:
                nodes.append(
                    helper.make_node(
                        {"matmul": "MatMul", "add": "Add", "mul": "Mul", "tanh": "Tanh", "relu": "Relu"}[op],
                        operands,
                        [result],
                    )
                )
        inputs = [helper.make_tensor_value_info(s.name, TensorProto.FLOAT, list(s.dims)) for s in loaded.specs]
        ranks = [a.ndim for a in model.evaluate(loaded.example)]
        outputs = [
            helper.make_tensor_value_info(o, TensorProto.FLOAT, [None] * r) for o, r in zip(model.outputs, ranks)
        ]
        inits = [numpy_helper.from_array(v, k) for k, v in model.weights.items()]
        graph = helper.make_graph(nodes, "toyfw", inputs, outputs, inits)
        onnx_model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", request.opset or 20)], producer_name="onnxbridge-toyfw"
        )
        onnx_model.ir_version = 9
        return ExportedModel(onnx_model, tuple(model.outputs))


class ToyConverter:
    """toyfw models to ONNX."""

    framework = "toyfw"
    route_names = ("toyfw/helper",)
    suffixes = (".toyfw",)
    dir_markers = ("toyfw.json",)
    type_modules = ("onnxbridge_toyfw",)
    packages = ("onnxbridge-toyfw",)

    def load(
        self, ref: SourceRef, specs: tuple[TensorSpec, ...] = (), *, trust: bool = False, obj: Any = None
    ) -> LoadedModel:
        if ref.is_python:
            model, _ = resolve_factory(obj if obj is not None else load_python_object(ref), ref.text)
        elif ref.kind == "dir":
            model = ToyModel.read(ref.path / "toyfw.json")
        else:
            model = ToyModel.read(ref.path)
        if not isinstance(model, ToyModel):
            raise UsageError(f"{ref.text} gives a {type(model).__name__}, not a ToyModel", "return a ToyModel")
        specs = merge_specs(model.specs(), specs, ref.text)
        sizes = axis_sizes(specs)
        return LoadedModel(self.framework, ref.text, model, specs, generate_inputs(specs, sizes, seed=0), sizes)

    def routes(self, loaded: LoadedModel) -> list[HelperRoute]:
        return [HelperRoute()]

    def reference_runner(self, loaded: LoadedModel) -> ToyRunner:
        return ToyRunner(loaded.model)
