"""Keras (TensorFlow backend) against a tf2onnx-converted ONNX model: the first layer whose output diverges.

tf2onnx keeps TensorFlow op names as node names (``net_1/dense_2/MatMul``) and ``op:0`` tensor names
as value names, but TensorFlow uniquifies name scopes per graph, so a layer's scope is *not* its name
(measured, Keras 3.15 / TF 2.21: layer ``dense`` ran in ``net_1/dense_2`` because a layer ``dense_1``
exists; the two calls of a shared ``dense_1`` in ``net_1/dense_1_1`` and ``net_1/dense_1_3``).
So :func:`trace_scopes` traces the model exactly as the converter does (``tf.function`` over the same
call and input signature), with every layer's ``call`` wrapped to record the name scope it runs in
and the names of its output tensors: scopes map nodes to layer calls, tensor names pick the outputs.

The eager side (:class:`KerasTracer`) wraps ``call`` the same way and runs the model eagerly; it
works for functional, Sequential and subclassed models alike, and counts calls of shared layers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .compare import Scorer
from .descent import OnEnd, OnStart, call_tree, map_calls
from .finding import Finding
from .framework import localize_calls
from .graph import ValueFetcher
from .origins import ModuleRef, NodeOrigin

if TYPE_CHECKING:
    import onnx

    from ..specs import TensorSpec

__all__ = ["KerasTracer", "LayerScope", "trace_scopes", "keras_origins", "localize_keras"]


def _walk(layer: Any) -> Iterator[tuple[str, Any]]:
    """(path, layer) for every sub-layer, depth first; paths join layer names with '/'."""
    seen: set[int] = set()

    def rec(parent: Any, path: str) -> Iterator[tuple[str, Any]]:
        for sub in parent._flatten_layers(include_self=False, recursive=False):
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            p = f"{path}/{sub.name}" if path else sub.name
            yield p, sub
            yield from rec(sub, p)

    yield from rec(layer, "")


@contextlib.contextmanager
def _wrapped_calls(
    model: Any, before: Callable[[Any, str, tuple, dict], Any], after: Callable[[Any, Any], None]
) -> Iterator[None]:
    """Wrap ``call`` of every sub-layer (an instance attribute, removed afterwards):
    ``token = before(layer, path, args, kwargs)``, then ``after(token, outputs)``."""
    wrapped = []
    for path, layer in _walk(model):
        own = layer.__dict__.get("call")
        bound = layer.call

        def call(*args: Any, __bound=bound, __layer=layer, __path=path, **kwargs: Any) -> Any:
            token = before(__layer, __path, args, kwargs)
            out = __bound(*args, **kwargs)
            after(token, out)
            return out

        object.__setattr__(layer, "call", call)
        wrapped.append((layer, own))
    try:
        yield
    finally:
        for layer, own in wrapped:
            if own is None:
                object.__delattr__(layer, "call")
            else:
                object.__setattr__(layer, "call", own)


def _flat(obj: Any) -> list[Any]:
    import tensorflow as tf

    return [t for t in tf.nest.flatten(obj) if hasattr(t, "shape") and hasattr(t, "dtype")]


def _nbytes(ts: list[Any]) -> int:
    return sum(
        int(np.prod([d or 1 for d in t.shape])) * np.dtype(t.dtype.as_numpy_dtype).itemsize
        for t in ts
        if hasattr(t.dtype, "as_numpy_dtype")
    )


class _Calls:
    """Call indices per layer object."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def ref(self, layer: Any, path: str) -> ModuleRef:
        self.counts[id(layer)] = self.counts.get(id(layer), 0) + 1
        return ModuleRef(path, self.counts[id(layer)] - 1)


class KerasTracer:
    """Runs ``call(*inputs)`` (the converter's ``model(x, training=False)``) eagerly, every sub-layer wrapped."""

    def __init__(self, model: Any, call: Callable[..., Any], inputs: Sequence[np.ndarray]) -> None:
        self.model, self.call, self.inputs = model, call, list(inputs)

    def run(self, on_start: OnStart, on_end: OnEnd) -> None:
        import tensorflow as tf

        calls = _Calls()

        def before(layer: Any, path: str, args: tuple, kwargs: dict) -> ModuleRef:
            ref = calls.ref(layer, path)
            ts = _flat((args, kwargs))
            on_start(ref, type(layer).__name__, lambda: [np.asarray(t) for t in ts], _nbytes(ts))
            return ref

        def after(ref: ModuleRef, out: Any) -> None:
            ts = _flat(out)
            on_end(ref, lambda: [np.asarray(t) for t in ts], _nbytes(ts))

        with _wrapped_calls(self.model, before, after):
            self.call(*(tf.constant(x) for x in self.inputs))


@dataclass(frozen=True)
class LayerScope:
    """Where one layer call ran in the traced graph."""

    ref: ModuleRef
    scope: str  # the TF name scope ('net_1/dense_2')
    outputs: tuple[str, ...]  # TF tensor names of its outputs ('net_1/dense_2/BiasAdd:0')


def trace_scopes(model: Any, call: Callable[..., Any], specs: Sequence[TensorSpec]) -> dict[ModuleRef, LayerScope]:
    """Trace ``call`` as the Keras route does (``tf.function`` with the specs' signature), recording the
    name scope and output tensor names of every layer call."""
    import tensorflow as tf

    from ..converters.tf_graph import quiet_tf, tf_signature

    scopes: dict[ModuleRef, LayerScope] = {}
    calls = _Calls()

    def before(layer: Any, path: str, args: tuple, kwargs: dict) -> tuple[ModuleRef, str]:
        return calls.ref(layer, path), tf.compat.v1.get_default_graph().get_name_scope()

    def after(token: tuple[ModuleRef, str], out: Any) -> None:
        ref, scope = token  # inside ``call`` Keras has already entered the layer's own, uniquified scope
        scopes[ref] = LayerScope(ref, scope, tuple(t.name for t in _flat(out) if hasattr(t, "name")))

    with _wrapped_calls(model, before, after), quiet_tf():
        tf.function(call, input_signature=tf_signature(specs)).get_concrete_function()
    return scopes


def keras_origins(candidate: onnx.ModelProto, scopes: Mapping[ModuleRef, LayerScope]) -> dict[str, NodeOrigin]:
    """ONNX node -> the stack of layer calls whose recorded scope prefixes the node's name."""
    by_scope = {s.scope: s.ref for s in scopes.values() if s.scope}
    out: dict[str, NodeOrigin] = {}
    for node in candidate.graph.node:
        parts = node.name.split("/")
        stack = [by_scope[p] for p in ("/".join(parts[:k]) for k in range(1, len(parts))) if p in by_scope]
        out[node.name] = NodeOrigin(node.name, node.op_type, tuple(node.output), tuple(stack))
    return out


def localize_keras(
    model: Any,
    call: Callable[..., Any],
    specs: Sequence[TensorSpec],
    inputs: Sequence[np.ndarray],
    candidate: onnx.ModelProto,
    feeds: Mapping[str, np.ndarray],
    scorer: Scorer,
    *,
    budget_bytes: int,
    provider: str = "cpu",
) -> Finding:
    """The first layer call of ``model`` whose output differs from the ONNX model's value for it."""
    scopes = trace_scopes(model, call, specs)
    table = keras_origins(candidate, scopes)
    fetcher = ValueFetcher(candidate, provider)
    cmap = map_calls(fetcher.index, table, {r: s.outputs for r, s in scopes.items()})
    tracer = KerasTracer(model, call, inputs)
    notes = (
        ()
        if cmap
        else (
            "no ONNX node name carries a layer's scope (the model was not converted by the "
            "tf2onnx route, whose names onnxbridge reads): only the stage table applies",
        )
    )
    return localize_calls(
        tracer,
        call_tree(tracer),
        cmap,
        table,
        fetcher,
        feeds,
        scorer,
        budget_bytes=budget_bytes,
        kind="layer",
        notes=notes,
    )
