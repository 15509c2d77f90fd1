"""What one direction of localisation hands back to the API: the divergence, the checks, the repro's data."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..results.localize import Divergence, LayerCheck
from .compare import TensorDiff

if TYPE_CHECKING:
    import onnx

    from .descent import CallCheck

__all__ = ["ReproCase", "Finding", "layer_check", "finite"]


@dataclass(frozen=True)
class ReproCase:
    """A subgraph of ``model`` that shows the divergence alone: its nodes, its inputs as recorded, and
    the reference's value of its output(s)."""

    model: onnx.ModelProto = field(repr=False)
    nodes: tuple[str, ...]
    inputs: Mapping[str, np.ndarray] = field(repr=False)
    expected: Mapping[str, np.ndarray] = field(repr=False)
    provider: str = "cpu"


@dataclass(frozen=True)
class Finding:
    """One direction's answer: the first divergence (None: none), every check made, and what was covered."""

    divergence: Divergence | None
    layers: tuple[LayerCheck, ...]
    total: int  # calls (or values) that could be compared
    passes: int
    values_marked: int
    not_mapped: int = 0  # calls with no ONNX node of their own (folded, or no tensors)
    notes: tuple[str, ...] = ()
    repro: ReproCase | None = None


def finite(x: float | None) -> float | None:
    """``x``, or None when it is NaN (nothing compared); infinities stay (JSON writes them as null)."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _worst(diffs: Sequence[TensorDiff]) -> TensorDiff | None:
    return max(diffs, key=lambda d: d.score, default=None)


def layer_check(check: CallCheck) -> LayerCheck:
    """A framework call's check as a point of the per-layer plot."""
    w = _worst(check.outputs)
    return LayerCheck(
        name=str(check.ref),
        kind=check.class_name,
        depth=check.depth,
        position=check.order,
        score=finite(check.out_score) if check.outputs else None,
        input_score=finite(check.in_score) if check.inputs else None,
        max_abs=w.max_abs if w else None,
        passed=(not check.failed) if check.outputs else None,
        values=tuple(d.name for d in check.outputs),
    )
