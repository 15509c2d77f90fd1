"""Input specifications: ``NAME:DIMS[:DTYPE]`` strings and the typed values they become."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "TensorSpec",
    "SizeRange",
    "parse_input_spec",
    "parse_input_specs",
    "declared_ranges",
    "DTYPES",
    "numpy_dtype",
]

# Names accepted after the second colon, mapped to numpy dtype names.
DTYPES = {
    "float32": "float32",
    "float": "float32",
    "fp32": "float32",
    "float16": "float16",
    "half": "float16",
    "fp16": "float16",
    "float64": "float64",
    "double": "float64",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "int64": "int64",
    "long": "int64",
    "int32": "int32",
    "int": "int32",
    "int16": "int16",
    "int8": "int8",
    "uint8": "uint8",
    "bool": "bool",
}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")
_AXIS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# NAME=LO..HI, NAME=..HI, NAME=LO.. (either bound may be left out, not both)
_RANGED = re.compile(r"^(?P<name>[^=]*)=(?P<lo>\d*)\.\.(?P<hi>\d*)$")


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype for a spec dtype name (bfloat16 through ml_dtypes when present)."""
    import numpy as np

    if name == "bfloat16":
        try:
            import ml_dtypes

            return np.dtype(ml_dtypes.bfloat16)
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise UsageError("bfloat16 inputs need the ml_dtypes package", "pip install ml_dtypes") from e
    return np.dtype(name)


@dataclass(frozen=True)
class SizeRange:
    """The sizes a dynamic axis is declared valid on (``seq=1..24``): ``lo`` to ``hi`` inclusive,
    ``hi=None`` for no upper bound."""

    lo: int = 1
    hi: int | None = None

    def __contains__(self, size: object) -> bool:
        return isinstance(size, int) and size >= self.lo and (self.hi is None or size <= self.hi)

    def clamp(self, size: int) -> int:
        """``size`` moved into the range."""
        size = max(size, self.lo)
        return size if self.hi is None else min(size, self.hi)

    def __str__(self) -> str:
        return f"{self.lo}..{'' if self.hi is None else self.hi}"


@dataclass(frozen=True)
class TensorSpec:
    """One named input: its dims (int = fixed size, str = named dynamic axis), dtype, and the size
    range declared for some of its axes (``ranges``: axis name -> :class:`SizeRange`)."""

    name: str
    dims: tuple[int | str, ...]
    dtype: str = "float32"
    ranges: tuple[tuple[str, SizeRange], ...] = ()

    @property
    def dynamic_axes(self) -> dict[int, str]:
        """Axis index -> axis name for every dynamic axis."""
        return {i: d for i, d in enumerate(self.dims) if isinstance(d, str)}

    def shape(self, sizes: dict[str, int]) -> tuple[int, ...]:
        """The concrete shape with each named axis set from ``sizes``."""
        try:
            return tuple(d if isinstance(d, int) else int(sizes[d]) for d in self.dims)
        except KeyError as e:
            raise UsageError(f"input '{self.name}': no size for dynamic axis {e.args[0]!r}") from e

    def __str__(self) -> str:
        ranges = dict(self.ranges)
        dims = ",".join(f"{d}={ranges[d]}" if d in ranges else str(d) for d in self.dims)
        return f"{self.name}:{dims}:{self.dtype}"


def parse_input_spec(text: str) -> TensorSpec:
    """Parse ``NAME:DIMS[:DTYPE]``, e.g. ``pixel_values:batch,3,224,224:float32``."""
    hint = "write --input NAME:DIMS[:DTYPE], e.g. --input x:batch,3,224,224:float32"
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise UsageError(f"malformed --input {text!r}: expected NAME:DIMS[:DTYPE]", hint)
    name, dims_text = parts[0], parts[1]
    if not _NAME.match(name):
        raise UsageError(f"malformed --input {text!r}: {name!r} is not a valid input name", hint)
    dims: list[int | str] = []
    ranges: list[tuple[str, SizeRange]] = []
    for raw in dims_text.split(","):
        d = raw.strip()
        if "=" in d:
            d, size_range = _parse_range(text, d, hint)
            ranges.append((d, size_range))
            dims.append(d)
        elif re.fullmatch(r"\d+", d):
            if int(d) <= 0:
                raise UsageError(f"malformed --input {text!r}: sizes must be positive, got {d}", hint)
            dims.append(int(d))
        elif _AXIS.match(d):
            dims.append(d)
        else:
            raise UsageError(
                f"malformed --input {text!r}: dim {d!r} is neither a positive integer nor an axis name", hint
            )
    dtype = "float32"
    if len(parts) == 3:
        key = parts[2].strip().lower()
        if key not in DTYPES:
            raise UsageError(
                f"malformed --input {text!r}: unknown dtype {parts[2]!r}",
                f"use one of {', '.join(sorted(set(DTYPES.values())))}",
            )
        dtype = DTYPES[key]
    return TensorSpec(name=name, dims=tuple(dims), dtype=dtype, ranges=tuple(_one_range_per_axis(ranges).items()))


def _parse_range(text: str, dim: str, hint: str) -> tuple[str, SizeRange]:
    """One ``NAME=LO..HI`` dim of ``--input`` (either bound may be left out)."""
    m = _RANGED.match(dim)
    if not m or not (m.group("lo") or m.group("hi")):
        raise UsageError(
            f"malformed --input {text!r}: {dim!r} is not NAME=LO..HI",
            "a range is written seq=1..24, seq=..24 or seq=8..",
        )
    axis = m.group("name")
    if re.fullmatch(r"\d+", axis):
        raise UsageError(
            f"malformed --input {text!r}: {dim!r} puts a range on the fixed size {axis}",
            "only a named (dynamic) axis takes a range: write NAME=LO..HI, e.g. seq=1..24",
        )
    if not _AXIS.match(axis):
        raise UsageError(f"malformed --input {text!r}: {axis!r} is not an axis name", hint)
    lo = int(m.group("lo")) if m.group("lo") else 1
    hi = int(m.group("hi")) if m.group("hi") else None
    if lo < 1:
        raise UsageError(f"malformed --input {text!r}: {dim!r} starts below 1", "sizes start at 1: e.g. seq=1..24")
    if hi is not None and hi < lo:
        raise UsageError(
            f"malformed --input {text!r}: in {dim!r} the upper bound is below the lower bound",
            "write LO..HI with LO <= HI",
        )
    return axis, SizeRange(lo, hi)


def parse_input_specs(texts: tuple[str, ...] | list[str] | None) -> tuple[TensorSpec, ...]:
    """Parse several ``--input`` values; names must be unique."""
    specs = tuple(parse_input_spec(t) for t in texts or ())
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"--input names must be unique; repeated: {', '.join(dupes)}")
    declared_ranges(specs)  # one range per axis name
    return specs


def declared_ranges(specs: tuple[TensorSpec, ...] | list[TensorSpec]) -> dict[str, SizeRange]:
    """Axis name -> the range declared for it on any input; two different ranges for one axis are
    a usage error. An axis named on several inputs takes the range given on any of them."""
    return _one_range_per_axis(r for spec in specs for r in spec.ranges)


def _one_range_per_axis(ranges: Iterable[tuple[str, SizeRange]]) -> dict[str, SizeRange]:
    """(axis, range) pairs -> axis -> range; two different ranges for one axis are a usage error."""
    out: dict[str, SizeRange] = {}
    for axis, size_range in ranges:
        if out.setdefault(axis, size_range) != size_range:
            raise UsageError(
                f"axis {axis!r} is given two ranges: {out[axis]} and {size_range}",
                "declare the range once, or give the same range on every input",
            )
    return out
