"""Input specifications: ``NAME:DIMS[:DTYPE]`` strings and the typed values they become."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["TensorSpec", "parse_input_spec", "parse_input_specs", "DTYPES", "numpy_dtype"]

# Names accepted after the second colon, mapped to numpy dtype names.
DTYPES = {
    "float32": "float32", "float": "float32", "fp32": "float32",
    "float16": "float16", "half": "float16", "fp16": "float16",
    "float64": "float64", "double": "float64",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "int64": "int64", "long": "int64",
    "int32": "int32", "int": "int32",
    "int16": "int16", "int8": "int8", "uint8": "uint8",
    "bool": "bool",
}

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/]*$")
_AXIS = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
class TensorSpec:
    """One named input: its dims (int = fixed size, str = named dynamic axis) and dtype."""

    name: str
    dims: tuple[int | str, ...]
    dtype: str = "float32"

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
        return f"{self.name}:{','.join(str(d) for d in self.dims)}:{self.dtype}"


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
    for raw in dims_text.split(","):
        d = raw.strip()
        if re.fullmatch(r"\d+", d):
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
    return TensorSpec(name=name, dims=tuple(dims), dtype=dtype)


def parse_input_specs(texts: tuple[str, ...] | list[str] | None) -> tuple[TensorSpec, ...]:
    """Parse several ``--input`` values; names must be unique."""
    specs = tuple(parse_input_spec(t) for t in texts or ())
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"--input names must be unique; repeated: {', '.join(dupes)}")
    return specs
