"""Seeded input generation from input specs, with sensible ranges per dtype and role, and the value
ranges of the user's example inputs when there are any."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..options import is_batch_axis
from ..specs import TensorSpec, numpy_dtype

if TYPE_CHECKING:
    import onnx

__all__ = [
    "IdRanges",
    "ValueRange",
    "generate_inputs",
    "input_role",
    "default_axis_size",
    "vocab_sizes",
    "REDRAWS",
    "blame_inputs",
]

_MASK = re.compile(r"mask", re.I)
_TOKEN_TYPE = re.compile(r"token_type|segment", re.I)
_POSITION = re.compile(r"position", re.I)

# Draws of one case when the source raises on its inputs: the first, two more seeds, then a draw from
# the example's own values (see generate_inputs' ``attempt``).
REDRAWS = 4


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
class ValueRange:
    """The values one example input holds, so generated inputs stay where the model was shown to work.

    ``lo`` / ``hi``: min and max; ``nonzero``: the example never holds 0 (a divisor); ``values``: the
    few distinct values an example repeats (a mask, class ids), drawn from exclusively; ``mean`` /
    ``std`` shape float draws; ``sample``: some of the example's own values (the last redraw uses them).
    """

    dtype: str
    lo: float
    hi: float
    nonzero: bool = False
    values: tuple[float, ...] = ()  # the few values an example holds (ints and bools among them)
    mean: float = 0.0
    std: float = 1.0
    sample: tuple[float, ...] = ()

    @classmethod
    def of(cls, array: Any) -> ValueRange | None:
        """The range of one example array (None when it is empty or not numeric)."""
        a = np.asarray(array)
        if a.size == 0 or not (a.dtype == bool or np.issubdtype(a.dtype, np.number) or a.dtype.name == "bfloat16"):
            return None
        if a.dtype == bool:
            seen = tuple(bool(v) for v in np.unique(a))
            return cls("bool", 0, 1, values=seen if len(seen) == 1 else ())
        f = a.astype(np.float64)
        finite = f[np.isfinite(f)]
        if finite.size == 0:
            return None
        lo, hi = float(finite.min()), float(finite.max())
        nonzero = not bool(np.any(finite == 0))
        sample = tuple(np.asarray(a).ravel()[:: max(1, a.size // 64)][:64].tolist())
        if np.issubdtype(a.dtype, np.integer):
            uniq = np.unique(a)
            # a small set only when the example repeats its values (a mask, class ids), not for a
            # short example that holds each id once
            few = (len(uniq) <= 2 and a.size > 2) or (len(uniq) <= 16 and a.size >= 4 * len(uniq))
            return cls(a.dtype.name, lo, hi, nonzero, tuple(int(v) for v in uniq) if few else (), sample=sample)
        uniq = np.unique(finite[:4096])
        values = tuple(float(v) for v in uniq) if len(uniq) <= 2 and finite.size > 2 else ()
        return cls(
            a.dtype.name,
            lo,
            hi,
            nonzero,
            values,
            float(finite.mean()),
            float(finite.std()) if finite.size > 1 else 1.0,
            sample,
        )

    def describe(self) -> str:
        if self.values:
            return f"{self.dtype} in {{{', '.join(str(v) for v in self.values[:8])}{'...' if len(self.values) > 8 else ''}}}"
        return f"{self.dtype} in [{self.lo:g}, {self.hi:g}]" + (", never 0" if self.nonzero else "")

    def below(self, high: int | None) -> ValueRange:
        """Integer values kept below an exclusive bound (the vocabulary an id input indexes)."""
        if high is None or self.hi < high:
            return self
        values = tuple(v for v in self.values if v < high)
        return replace(self, hi=float(max(high - 1, self.lo)), values=values)

    def draw(self, shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype) -> np.ndarray:
        """Seeded values of ``shape`` within the range (ints in [lo, hi], never 0 when ``nonzero``)."""
        if self.values:
            return rng.choice(np.asarray(self.values), size=shape).astype(dtype)
        if np.issubdtype(dtype, np.integer) or dtype == bool:
            ilo, ihi = int(self.lo), int(self.hi)
            ints = rng.integers(ilo, ihi + 1, size=shape)
            if self.nonzero and ilo <= 0 <= ihi:
                ints = np.where(ints == 0, ihi if ihi > 0 else ilo, ints)
            return ints.astype(dtype)
        span = max(self.hi - self.lo, 1e-6)
        if self.lo >= 0 and self.hi <= 1:  # images in [0, 1], probabilities
            out = rng.uniform(self.lo, self.hi, size=shape)
        else:  # a little outside the example, never across 0 when the example does not cross it
            lo, hi = self.lo - 0.25 * span, self.hi + 0.25 * span
            if self.lo >= 0:
                lo = max(lo, self.lo / 2)
            if self.hi <= 0:
                hi = min(hi, self.hi / 2)
            out = np.clip(rng.normal(self.mean, max(self.std, 1e-6), size=shape), lo, hi)
        if self.nonzero:
            out = np.where(np.abs(out) < 1e-6, self.hi if self.hi != 0 else self.lo, out)
        return out.astype(np.float32).astype(dtype)

    def resample(self, shape: tuple[int, ...], rng: np.random.Generator, dtype: np.dtype) -> np.ndarray:
        """Values drawn from the example's own (the last redraw: exactly what the source ran on)."""
        if not self.sample:
            return self.draw(shape, rng, dtype)
        return rng.choice(np.asarray(self.sample), size=shape).astype(dtype)


@dataclass(frozen=True)
class IdRanges:
    """What generated inputs may hold, per input: exclusive upper bounds for integer ids (per input
    name, else ``default``) and the value ranges of the user's example inputs (``values``)."""

    default: int | None = None
    per_input: tuple[tuple[str, int], ...] = ()
    values: tuple[tuple[str, ValueRange], ...] = ()

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

    def value_range(self, name: str) -> ValueRange | None:
        """The range of the example input ``name``, when the user gave examples."""
        return dict(self.values).get(name)

    def as_dict(self) -> dict[str, int]:
        return dict(self.per_input)

    def with_graph(self, model: Any) -> IdRanges:
        """The table each id input indexes in the ONNX graph wins over the converter's guess."""
        found = vocab_sizes(model)
        if not found:
            return self
        return replace(self, per_input=tuple({**self.as_dict(), **found}.items()))

    def with_examples(self, example: Mapping[str, Any]) -> IdRanges:
        """The value range of every example input (the user's, never generated ones) added."""
        found = {k: vr for k, v in example.items() if (vr := ValueRange.of(v)) is not None}
        return replace(self, values=tuple(found.items())) if found else self


def generate_inputs(
    specs: tuple[TensorSpec, ...] | list[TensorSpec],
    sizes: dict[str, int],
    seed: int,
    *,
    int_high: IdRanges | int | Mapping[str, int] | None = None,
    attempt: int = 0,
) -> dict[str, np.ndarray]:
    """One array per spec, shapes from ``sizes`` for the named axes, values seeded.

    With example inputs (``int_high.values``), each input is drawn within its example's range
    (integers in [min, max], never 0 when the example holds no 0, the example's few values when it
    repeats them); masks and positions keep their role below. Without: floats are standard normal
    (what normalised images and embeddings look like); token ids lie in ``[0, high)`` (the
    embedding's vocabulary when known, else 100; see :class:`IdRanges`); token type ids are 0/1 (or
    below their own table size); masks are ones with a random tail of zeros per row, never all zero;
    bools are random. ``attempt`` > 0 redraws a case the source could not run: another seed, and the
    last of :data:`REDRAWS` attempts resamples the example's own values.
    """
    rng = np.random.default_rng(seed if attempt == 0 else [seed, attempt])
    ranges = IdRanges.of(int_high)
    out: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = spec.shape(sizes)
        dtype = numpy_dtype(spec.dtype)
        role = input_role(spec)
        example = ranges.value_range(spec.name)
        if example is not None and not np.issubdtype(dtype, np.floating) and dtype.name != "bfloat16":
            example = example.below(ranges.high(spec.name))
        if example is not None and attempt >= REDRAWS - 1:
            arr = example.resample(shape, rng, dtype)
        elif example is not None and not _role_wins(role, example):
            arr = example.draw(shape, rng, dtype)
        else:
            arr = _role_values(role, spec, shape, dtype, rng, ranges)
        out[spec.name] = arr
    return out


def blame_inputs(run: Any, feeds: Mapping[str, np.ndarray]) -> list[str]:
    """The inputs whose values a source refuses: those that, set to ones (a benign value for ids,
    divisors, masks and floats alike) with the others unchanged, let ``run(feeds)`` succeed."""
    blamed = []
    for name, value in feeds.items():
        try:
            run({**feeds, name: np.ones_like(value)})
        except Exception:
            continue
        blamed.append(name)
    return blamed


def _role_wins(role: str, example: ValueRange) -> bool:
    """Masks of 0/1 keep their padded-tail shape and positions their 0, 1, 2...; everything else is
    drawn within the example's range."""
    if role == "mask":
        return set(example.values or (example.lo, example.hi)) <= {0, 1}
    return role == "position"


def _role_values(
    role: str, spec: TensorSpec, shape: tuple[int, ...], dtype: np.dtype, rng: np.random.Generator, ranges: IdRanges
) -> np.ndarray:
    if role == "float":
        return rng.standard_normal(shape).astype(np.float32).astype(dtype)
    if role == "mask":
        arr = np.ones(shape, dtype=np.int64)
        if len(shape) >= 2 and shape[-1] > 1:
            # keep at least the first position; pad a random tail per row
            keep = rng.integers(1, shape[-1] + 1, size=shape[:-1])
            arr = (np.arange(shape[-1]) < keep[..., None]).astype(np.int64)
            if arr.all():  # at least one padded position, so that masked comparison is exercised
                arr[(0,) * (len(shape) - 1) + (-1,)] = 0
        return arr.astype(dtype)
    if role == "token_type":
        return rng.integers(0, max(1, min(2, ranges.high(spec.name) or 2)), size=shape).astype(dtype)
    if role == "position":
        return np.broadcast_to(np.arange(shape[-1] if shape else 1), shape).astype(dtype).copy()
    if role == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    high = ranges.high(spec.name) or 100
    if np.issubdtype(dtype, np.integer):
        high = min(high, int(np.iinfo(dtype).max) + 1)
    return rng.integers(0, high, size=shape).astype(dtype)


# Ops that carry token ids through unchanged on their way to the embedding's Gather.
_ID_PASS_THROUGH = {"Cast", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Identity", "Expand"}


def vocab_sizes(model: onnx.ModelProto) -> dict[str, int]:
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
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
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

    int_types = {
        onnx.TensorProto.INT64,
        onnx.TensorProto.INT32,
        onnx.TensorProto.INT16,
        onnx.TensorProto.INT8,
        onnx.TensorProto.UINT8,
    }
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
