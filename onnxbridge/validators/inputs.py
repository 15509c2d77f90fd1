"""Seeded input generation from input specs, with sensible ranges per dtype and role."""

from __future__ import annotations

import re

import numpy as np

from ..specs import TensorSpec, numpy_dtype

__all__ = ["generate_inputs", "input_role", "default_axis_size"]

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
    return 2 if axis.lower() in {"batch", "batch_size", "n", "b", "bs"} else 8


def generate_inputs(
    specs: tuple[TensorSpec, ...] | list[TensorSpec],
    sizes: dict[str, int],
    seed: int,
    *,
    int_high: int | None = None,
) -> dict[str, np.ndarray]:
    """One array per spec, shapes from ``sizes`` for the named axes, values seeded.

    Floats are standard normal; token ids lie in ``[0, int_high)`` (the embedding's vocabulary
    when known, else 100); masks are ones with some trailing zeros; bools are random.
    """
    rng = np.random.default_rng(seed)
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
            arr = rng.integers(0, 2, size=shape).astype(dtype)
        elif role == "position":
            arr = np.broadcast_to(np.arange(shape[-1] if shape else 1), shape).astype(dtype).copy()
        elif role == "bool":
            arr = rng.integers(0, 2, size=shape).astype(bool)
        else:
            high = int_high or 100
            if np.issubdtype(dtype, np.integer):
                high = min(high, int(np.iinfo(dtype).max) + 1)
            arr = rng.integers(0, high, size=shape).astype(dtype)
        out[spec.name] = arr
    return out
