"""The JAX / Flax converter (``pip install onnxbridge[jax]``): ``file.py:NAME`` giving a Flax NNX module, a
jitted function, or ``(callable, example_inputs)``; exported by jax2onnx and validated against JAX eager.

Inputs are positional: named after the callable's parameters, shaped by the example inputs or
``--input`` (a named dim is a symbolic, dynamic dimension for jax2onnx). A plain Python function is
not recognisable as JAX: pass ``--framework jax``.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UsageError
from ..parity.inputs import generate_inputs
from ..sources import SourceRef, load_python_object, resolve_factory
from ..specs import TensorSpec
from .base import ExportedModel, ExportRequest, InputDomain, SourceModel, axis_sizes

__all__ = ["JaxConverter", "JaxState", "Jax2OnnxRoute"]


@dataclass(frozen=True)
class JaxState:
    """The JAX converter's state of a loaded source: the inputs in call order and the flattened output names."""

    order: tuple[str, ...]
    output_names: tuple[str, ...]


DEFAULT_OPSET = 21  # jax2onnx's own default (23) is newer than most runtimes load


def _param_names(fn: Any, count: int) -> list[str]:
    target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else getattr(fn, "__call__", fn)
    try:
        params = [
            p.name
            for p in inspect.signature(target).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    return [params[i] if i < len(params) else f"input_{i}" for i in range(count)]


def _flatten(out: Any) -> list[tuple[str, np.ndarray]]:
    """(name, array) of every output leaf: dict keys, else output_N."""
    if isinstance(out, dict):
        return [(str(k), np.asarray(v)) for k, v in out.items()]
    if isinstance(out, (tuple, list)):
        return [(f"output_{i}", np.asarray(v)) for i, v in enumerate(out)]
    return [("output_0", np.asarray(out))]


class JaxRunner:
    """JAX eager (the callable itself) as the reference runner."""

    name = "jax"

    def __init__(self, fn: Any, order: tuple[str, ...], output_names: tuple[str, ...]) -> None:
        self.fn, self.order, self._output_names = fn, order, output_names

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._output_names

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        import jax.numpy as jnp

        return [a for _, a in _flatten(self.fn(*(jnp.asarray(feeds[n]) for n in self.order)))]


class Jax2OnnxRoute:
    """``jax2onnx.to_onnx`` with symbolic dims for the named axes."""

    name = "jax2onnx"

    def export(self, loaded: SourceModel[JaxState], request: ExportRequest) -> ExportedModel:
        import jax
        from jax2onnx import to_onnx

        from .._util import quiet

        names = sorted({d for s in loaded.specs for d in s.dims if isinstance(d, str)})
        symbols = dict(zip(names, jax.export.symbolic_shape(", ".join(names)))) if names else {}
        structs = [
            jax.ShapeDtypeStruct(
                tuple(symbols.get(d, d) if isinstance(d, str) else d for d in s.dims), np.dtype(s.dtype)
            )
            for s in loaded.specs
        ]
        outputs = loaded.state.output_names
        with quiet():
            model = to_onnx(
                loaded.model,
                structs,
                opset=request.opset or DEFAULT_OPSET,
                input_names=[s.name for s in loaded.specs],
                output_names=list(outputs),
            )
        return ExportedModel(model, tuple(o.name for o in model.graph.output))


class JaxConverter:
    """JAX functions and Flax NNX modules to ONNX."""

    framework = "jax"
    route_names = ("jax2onnx",)
    type_modules = ("flax", "jaxlib", "jax", "equinox")
    packages = ("jax", "jaxlib", "flax", "jax2onnx")

    def load(
        self, ref: SourceRef, specs: tuple[TensorSpec, ...] = (), *, trust: bool = False, obj: Any = None
    ) -> SourceModel[JaxState]:
        if not ref.is_python:
            raise UsageError(
                f"the jax converter reads file.py:NAME or module:NAME, not {ref.text}",
                "return a Flax module, a jitted function, or (callable, example_inputs)",
            )
        fn, example = resolve_factory(obj if obj is not None else load_python_object(ref), ref.text)
        if not callable(fn):
            raise UsageError(f"{ref.text} gives a {type(fn).__name__}, not a callable", "return a JAX callable")
        arrays = [
            np.asarray(a)
            for a in (example if isinstance(example, (tuple, list)) else (() if example is None else (example,)))
        ]
        specs, feeds, sizes = self._inputs(fn, arrays, specs, ref.text)
        order = tuple(s.name for s in specs)
        out = _flatten(fn(*(feeds[n] for n in order)))
        return SourceModel(
            self.framework,
            ref.text,
            fn,
            InputDomain.of(specs, sizes, None, feeds),
            JaxState(order, tuple(n for n, _ in out)),
        )

    @staticmethod
    def _inputs(fn: Any, arrays: list[np.ndarray], specs: tuple[TensorSpec, ...], where: str):
        """(specs, feeds, axis sizes): the example inputs, named and shaped by ``--input`` when given."""
        if not arrays:
            if not specs:
                raise UsageError(f"no inputs known for {where}", "pass --input, or return (callable, example_inputs)")
            sizes = axis_sizes(specs)
            return specs, generate_inputs(specs, sizes, seed=0), sizes
        if not specs:
            names = _param_names(fn, len(arrays))
            specs = tuple(TensorSpec(n, tuple(int(d) for d in a.shape), a.dtype.name) for n, a in zip(names, arrays))
            return specs, dict(zip(names, arrays)), {}
        if len(specs) != len(arrays):
            raise UsageError(
                f"{len(specs)} --input given but {where} has {len(arrays)} example inputs",
                "give one --input per positional input",
            )
        feeds = {s.name: a for s, a in zip(specs, arrays)}
        sizes = axis_sizes(specs, feeds)  # the example must fit --input (rank, fixed sizes)
        return tuple(dataclasses.replace(s, dtype=feeds[s.name].dtype.name) for s in specs), feeds, sizes

    def routes(self, loaded: SourceModel[JaxState]) -> list[Jax2OnnxRoute]:
        return [Jax2OnnxRoute()]

    def reference_runner(self, loaded: SourceModel[JaxState]) -> JaxRunner:
        return JaxRunner(loaded.model, loaded.state.order, loaded.state.output_names)
