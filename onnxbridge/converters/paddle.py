"""The PaddlePaddle converter (paddlepaddle + paddle2onnx, see docs/frameworks.md for the install): a
Paddle inference model (``inference.pdiparams`` beside ``inference.json`` (PIR) or ``inference.pdmodel``),
or ``file.py:NAME`` giving a ``paddle.nn.Layer`` (saved with ``paddle.jit.save`` and ``--input`` specs
first). Exported by paddle2onnx, validated against Paddle Inference.

Paddle's model files are a program (JSON or protobuf) and raw parameters: nothing is unpickled.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._util import quiet
from ..errors import InputError, UsageError
from ..parity.inputs import generate_inputs
from ..sources import SourceRef, load_python_object, resolve_factory
from ..specs import TensorSpec
from .axes import name_dynamic_axes
from .base import ExportedModel, ExportRequest, InputDomain, SourceModel, axis_sizes, merge_specs

__all__ = ["PaddleConverter", "PaddleState", "Paddle2OnnxRoute"]


@dataclass(frozen=True)
class PaddleState:
    """The Paddle converter's state of a loaded source: the program and parameters files, and the folder a
    Layer was saved to (kept alive with the source)."""

    program: Path
    params: Path
    keep: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)


DEFAULT_OPSET = 17


def _program(params: Path) -> Path:
    """The program file beside a ``.pdiparams`` file (PIR ``.json`` first, then ``.pdmodel``)."""
    for suffix in (".json", ".pdmodel"):
        if params.with_suffix(suffix).is_file():
            return params.with_suffix(suffix)
    raise InputError(
        f"{params}: no {params.stem}.json or {params.stem}.pdmodel beside it",
        "give the files paddle.jit.save wrote, side by side",
    )


def _predictor(program: Path, params: Path) -> Any:
    from paddle import inference

    config = inference.Config(str(program), str(params))
    config.disable_gpu()
    config.disable_glog_info()
    return inference.create_predictor(config)


def _export(program: Path, params: Path, opset: int) -> Any:
    import onnx
    import paddle2onnx

    with tempfile.TemporaryDirectory(prefix="onnxbridge-paddle-") as tmp, quiet():
        out = Path(tmp) / "model.onnx"
        paddle2onnx.export(
            str(program), str(params), str(out), opset_version=opset, enable_onnx_checker=True, optimize_tool="None"
        )
        return onnx.load(str(out))


def _found_specs(program: Path, params: Path) -> tuple[TensorSpec, ...]:
    """Inputs as the program declares them (read off paddle2onnx's graph: Paddle Inference does not say
    before it runs); a dynamic dim is ``batch`` first, then NAME_dimI."""
    from ..onnxio import input_specs

    specs = []
    for s in input_specs(_export(program, params, DEFAULT_OPSET)):
        dims = tuple(
            d if isinstance(d, int) else ("batch" if i == 0 else f"{s.name}_dim{i}") for i, d in enumerate(s.dims)
        )
        specs.append(TensorSpec(s.name, dims, s.dtype))
    return tuple(specs)


class PaddleRunner:
    """Paddle Inference (a predictor on the saved program) as the reference runner."""

    name = "paddle inference"

    def __init__(self, program: Path, params: Path) -> None:
        self.predictor = _predictor(program, params)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(self.predictor.get_output_names())

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        for name in self.predictor.get_input_names():
            self.predictor.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(feeds[name]))
        self.predictor.run()
        return [self.predictor.get_output_handle(n).copy_to_cpu() for n in self.predictor.get_output_names()]


class Paddle2OnnxRoute:
    """``paddle2onnx.export`` on the saved program, dynamic dims renamed after ``--input``."""

    name = "paddle2onnx"

    def export(self, loaded: SourceModel[PaddleState], request: ExportRequest) -> ExportedModel:
        model = _export(loaded.state.program, loaded.state.params, request.opset or DEFAULT_OPSET)
        notes = name_dynamic_axes(model, loaded.specs)
        return ExportedModel(model, tuple(o.name for o in model.graph.output), notes)


class PaddleConverter:
    """PaddlePaddle inference models and Layers to ONNX."""

    framework = "paddle"
    route_names = ("paddle2onnx",)
    suffixes = (".pdiparams", ".pdmodel")
    type_modules = ("paddle",)
    packages = ("paddlepaddle", "paddle2onnx")
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    def load(
        self, ref: SourceRef, specs: tuple[TensorSpec, ...] = (), *, trust: bool = False, obj: Any = None
    ) -> SourceModel[PaddleState]:
        notes: tuple[str, ...] = ()
        if ref.is_python:
            program, params = self._save_layer(obj if obj is not None else load_python_object(ref), specs, ref.text)
            notes = ("the Layer was saved with paddle.jit.save and --input specs, then converted",)
        elif ref.path is not None:
            params = ref.path.with_suffix(".pdiparams")
            if not params.is_file():
                raise InputError(f"{ref.path}: its parameters {params.name} are missing", "keep both files together")
            program = _program(params)
        else:
            raise UsageError(f"the paddle converter cannot read {ref.text}", "give model.pdiparams or file.py:NAME")
        specs = merge_specs(_found_specs(program, params), specs, ref.text)
        sizes = axis_sizes(specs)
        domain = InputDomain.of(specs, sizes, None, generate_inputs(specs, sizes, seed=0))
        return SourceModel(self.framework, ref.text, None, domain, PaddleState(program, params, self._tmp), notes)

    def _save_layer(self, obj: Any, specs: tuple[TensorSpec, ...], where: str) -> tuple[Path, Path]:
        import paddle

        layer, _ = resolve_factory(obj, where)
        if not isinstance(layer, paddle.nn.Layer):
            raise UsageError(f"{where} gives a {type(layer).__name__}, not a paddle.nn.Layer", "return a Layer")
        if not specs:
            raise UsageError(f"no inputs known for {where}", "pass --input NAME:DIMS[:DTYPE] for each input")
        layer.eval()
        self._tmp = tempfile.TemporaryDirectory(prefix="onnxbridge-paddle-")
        prefix = Path(self._tmp.name) / "inference"
        input_spec = [
            paddle.static.InputSpec([d if isinstance(d, int) else None for d in s.dims], s.dtype, s.name) for s in specs
        ]
        with quiet():
            paddle.jit.save(layer, str(prefix), input_spec=input_spec)
        params = prefix.with_suffix(".pdiparams")
        return _program(params), params

    def routes(self, loaded: SourceModel[PaddleState]) -> list[Paddle2OnnxRoute]:
        return [Paddle2OnnxRoute()]

    def reference_runner(self, loaded: SourceModel[PaddleState]) -> PaddleRunner:
        with quiet():
            return PaddleRunner(loaded.state.program, loaded.state.params)
