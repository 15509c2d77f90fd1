"""Seeded input generation from input specs, with sensible ranges per dtype and role."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..options import is_batch_axis
from ..specs import TensorSpec, numpy_dtype

__all__ = ["IdRanges", "generate_inputs", "input_role", "default_axis_size", "vocab_sizes"]

_MASK = re.compile(r"mask", re.I)
_TOKEN_TYPE = re.compile(r"token_type|segment", re.I)
_POSITION = re.compile(r"position", re.I)


def input_role(spec: TensorSpec) -> str:
    """A coarse role guessed from the name and dtype: mask, token_type, position, ids, float, bool."""
    if spec.dtype == "bool":
        return "mask" if _MASK.search(spec.name) else "bool"
    if spec.dtype.startswith(("float", "bfloat")):
        return "float"
    if _MASK.search(spec.name):
        return "mask"
    if _TOKEN_TYPE.search(spec.name):
        return "token_type"
    if _POSITION.search(spec.name):
        return "position"
    return "ids"


def default_axis_size(axis: str) -> int:
    """Export-time size of a named dynamic axis: 2 for batch-like axes, 8 for the others.

    Never 0 or 1: ``torch.export`` specialises on those.
    """
    return 2 if is_batch_axis(axis) else 8


@dataclass(frozen=True)
class IdRanges:
    """Exclusive upper bounds for generated integer ids: per input name, else ``default``."""

    default: int | None = None
    per_input: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, value: IdRanges | int | Mapping[str, int] | None) -> IdRanges:
        """From a converter's guess: one bound for every input, a bound per input, or none."""
        if isinstance(value, IdRanges):
            return value
        if isinstance(value, Mapping):
            return cls(None, tuple((str(k), int(v)) for k, v in value.items() if v is not None))
        return cls(None if value is None else int(value))

    def high(self, name: str) -> int | None:
        return dict(self.per_input).get(name, self.default)

    def as_dict(self) -> dict[str, int]:
        return dict(self.per_input)

    def with_graph(self, model: Any) -> IdRanges:
        """The table each id input indexes in the ONNX graph wins over the converter's guess."""
        found = vocab_sizes(model)
        if not found:
            return self
        return IdRanges(self.default, tuple({**self.as_dict(), **found}.items()))


def generate_inputs(
    specs: tuple[TensorSpec, ...] | list[TensorSpec],
    sizes: dict[str, int],
    seed: int,
    *,
    int_high: IdRanges | int | Mapping[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """One array per spec, shapes from ``sizes`` for the named axes, values seeded.

    Floats are standard normal (what normalised images and embeddings look like); token ids lie
    in ``[0, high)`` (the embedding's vocabulary when known, else 100; see :class:`IdRanges`); token type ids are 0/1 (or below their own table size); masks are ones with a
    random tail of zeros per row, never all zero; bools are random.
    """
    rng = np.random.default_rng(seed)
    ranges = IdRanges.of(int_high)
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = spec.shape(sizes)
        dtype = numpy_dtype(spec.dtype)
        role = input_role(spec)
        if role == "float":
            arr = rng.standard_normal(shape).astype(np.float32).astype(dtype)
        elif role == "mask":
            arr = np.ones(shape, dtype=np.int64)
            if len(shape) >= 2 and shape[-1] > 1:
                # keep at least the first position; pad a random tail per row
                keep = rng.integers(1, shape[-1] + 1, size=shape[:-1])
                arr = (np.arange(shape[-1]) < keep[..., None]).astype(np.int64)
            arr = arr.astype(dtype)
        elif role == "token_type":
            arr = rng.integers(0, max(1, min(2, ranges.high(spec.name) or 2)), size=shape).astype(dtype)
        elif role == "position":
            arr = np.broadcast_to(np.arange(shape[-1] if shape else 1), shape).astype(dtype).copy()
        elif role == "bool":
            arr = rng.integers(0, 2, size=shape).astype(bool)
        else:
            high = ranges.high(spec.name) or 100
            if np.issubdtype(dtype, np.integer):
                high = min(high, int(np.iinfo(dtype).max) + 1)
            arr = rng.integers(0, high, size=shape).astype(dtype)
        out[spec.name] = arr
    return out



# Ops that carry token ids through unchanged on their way to the embedding's Gather.
_ID_PASS_THROUGH = {"Cast", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Identity", "Expand"}


def vocab_sizes(model) -> dict[str, int]:
    """Integer graph input -> the size of the table it indexes, read off the ONNX graph.

    An input that reaches ``Gather(table, ids)`` as its indices (directly or through Cast /
    Reshape / Unsqueeze...) with a constant table gets that table's size along the gather axis;
    with several tables, the smallest. Lets ONNX-only validation draw token ids inside the vocab.
    """
    import onnx

    graph = model.graph
    shapes: dict[str, tuple[int, ...]] = {i.name: tuple(i.dims) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.output:
            for a in node.attribute:
                if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
                    shapes[node.output[0]] = tuple(a.t.dims)
    producers = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for idx, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, idx))

    def table_shape(name: str, depth: int = 0) -> tuple[int, ...] | None:
        if name in shapes:
            return shapes[name]
        prod = producers.get(name)
        if prod is not None and prod.op_type in ("Cast", "Identity") and depth < 4:
            return table_shape(prod.input[0], depth + 1)
        return None

    int_types = {onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.INT16,
                 onnx.TensorProto.INT8, onnx.TensorProto.UINT8}
    out: dict[str, int] = {}
    for inp in graph.input:
        if inp.name in shapes or inp.type.tensor_type.elem_type not in int_types:
            continue
        found: list[int] = []
        frontier, seen = [inp.name], set()
        while frontier:
            name = frontier.pop()
            if name in seen:
                continue
            seen.add(name)
            for node, idx in consumers.get(name, []):
                if node.op_type == "Gather" and idx == 1:
                    shape = table_shape(node.input[0])
                    axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
                    if shape and -len(shape) <= axis < len(shape) and shape[axis] > 0:
                        found.append(int(shape[axis]))
                elif node.op_type in _ID_PASS_THROUGH and idx == 0:
                    frontier.extend(node.output)
        if found:
            out[inp.name] = min(found)
    return out
