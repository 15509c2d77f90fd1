"""Mask-aware comparison: positions the model's own attention / padding mask excludes are not compared.

A padded token's output is whatever the model computes for a position nothing reads: a sliding-window row
that attends to nothing gives NaN or garbage in the source and something else in a correct export. When an
input is an attention mask (an integer or bool ``[batch, seq]`` input named like one, holding 0s), every
output whose leading axes are that ``[batch, seq]`` is compared only where the mask is 1; the report counts
the positions left out (``masked_positions`` per output).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MaskedPositions", "apply_keep", "keep_for", "mask_inputs", "masked_pairs"]

_MASK = re.compile(r"mask", re.IGNORECASE)
_NOT_PADDING = re.compile(r"head|causal|position|pixel", re.IGNORECASE)  # masks over something else than tokens


@dataclass(frozen=True)
class MaskedPositions:
    """The positions of one output that are compared (``keep``: ``[batch, seq]`` bools, None: all) and how
    many ``[batch, seq]`` positions the mask ``mask`` left out."""

    keep: np.ndarray | None
    count: int = 0
    mask: str | None = None


def mask_inputs(feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inputs that are padding masks: integer or bool, ``[batch, seq]``, named like a mask, with a 0."""
    out = {}
    for name, value in feeds.items():
        a = np.asarray(value)
        if (
            _MASK.search(name)
            and not _NOT_PADDING.search(name)
            and a.ndim == 2
            and (a.dtype == np.bool_ or np.issubdtype(a.dtype, np.integer))
            and a.size
            and not a.all()
        ):
            out[name] = a != 0
    return out


def keep_for(output: np.ndarray, masks: Mapping[str, np.ndarray]) -> MaskedPositions:
    """The positions of ``output`` to compare: those its one matching mask keeps (leading axes equal to the
    mask's ``[batch, seq]``). No mask, or two masks of that shape that disagree: every position."""
    shape = np.shape(output)
    fits = [(n, m) for n, m in masks.items() if len(shape) >= 2 and tuple(shape[:2]) == m.shape]
    if not fits or any(not np.array_equal(fits[0][1], m) for _, m in fits[1:]):
        return MaskedPositions(None)
    name, keep = fits[0]
    return MaskedPositions(keep, int((~keep).sum()), name)


def apply_keep(a: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    """``a`` with the positions ``keep`` leaves out set to 0 (the same on both sides: never a difference)."""
    if keep is None:
        return a
    k = keep.reshape(keep.shape + (1,) * (np.ndim(a) - 2))
    return np.where(k, a, np.zeros((), dtype=np.asarray(a).dtype))


def masked_pairs(
    refs: Sequence[np.ndarray], gots: Sequence[np.ndarray], feeds: Mapping[str, np.ndarray]
) -> tuple[list[np.ndarray], list[np.ndarray], list[MaskedPositions]]:
    """Both sides' outputs with the masked positions zeroed, and what was left out of each output."""
    masks = mask_inputs(feeds)
    if not masks:
        return list(refs), list(gots), [MaskedPositions(None) for _ in refs]
    positions = [keep_for(np.asarray(r), masks) for r in refs]
    r2 = [apply_keep(np.asarray(r), p.keep) for r, p in zip(refs, positions)]
    g2 = [
        apply_keep(np.asarray(g), p.keep) if np.shape(g) == np.shape(r) else np.asarray(g)
        for g, r, p in zip(gots, refs, positions)
    ]
    return r2, g2, positions
