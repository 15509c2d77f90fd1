"""Pair a framework call's tensors with the ONNX values at that call's boundary, and score them.

A tensor pairs with a value of the same element count and float-ness: the exact shape first, else an
axis permutation (tf2onnx keeps NCHW values under the TF name of an NHWC tensor once its transpose
optimiser pushed the Transpose down) or a same-size reshape. Two same-shaped candidates (a module
returning two tensors) are told apart by the least error on a sample: a diverging call is still
flagged (every candidate fails), only which of its outputs is named may be wrong.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .compare import Scorer, TensorDiff, quick_score

__all__ = ["Paired", "pair_tensors", "aligned"]


def _perms(src: tuple[int, ...], dst: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Axis permutations p with ``np.transpose(x_src, p).shape == dst``, identity first; 3-5D only.
    Equal shapes with repeated dims (N,8,8,8) keep their other candidates: NHWC and NCHW look alike."""
    if len(src) != len(dst) or sorted(src) != sorted(dst) or not 3 <= len(src) <= 5:
        return []
    perms = [p for p in itertools.permutations(range(len(src))) if tuple(src[i] for i in p) == dst]
    return sorted(perms, key=lambda p: p != tuple(range(len(src))))


def aligned(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    """``got`` in ``ref``'s layout: as it is, transposed (NCHW vs NHWC), or reshaped (same size)."""
    perms = _perms(got.shape, ref.shape)
    if len(perms) > 1 or (perms and got.shape != ref.shape):
        return min((np.transpose(got, p) for p in perms), key=lambda g: quick_score(ref, g))
    if got.shape == ref.shape:
        return got
    return got.reshape(ref.shape) if got.size == ref.size else got


@dataclass(frozen=True)
class Paired:
    """The reference tensors compared: one diff per paired tensor (named after its ONNX value)."""

    diffs: tuple[TensorDiff, ...]
    unpaired: int = 0


def pair_tensors(refs: Sequence[np.ndarray], cands: Mapping[str, np.ndarray], scorer: Scorer) -> Paired:
    """Pair every reference tensor with an unused candidate value and compare them."""
    used: set[str] = set()
    diffs: list[TensorDiff] = []
    unpaired = 0
    for r in refs:
        same = [
            n
            for n, v in cands.items()
            if n not in used and v.size == r.size and (v.dtype.kind == "f") == (r.dtype.kind == "f")
        ]
        if not same:
            unpaired += 1
            continue
        pool = [n for n in same if cands[n].shape == r.shape] or same
        best = pool[0] if len(pool) == 1 else min(pool, key=lambda n: quick_score(r, aligned(r, cands[n])))
        used.add(best)
        diffs.append(scorer.diff(best, r, aligned(r, cands[best])))
    return Paired(tuple(diffs), unpaired)
