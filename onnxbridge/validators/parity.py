"""Pure parity metrics: compare reference outputs with candidate outputs, per output."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..results import OutputParity

__all__ = ["Tolerance", "DEFAULT_TOLERANCES", "default_tolerance", "compare_output", "compare_outputs"]


@dataclass(frozen=True)
class Tolerance:
    """Elementwise check: ``|got - ref| <= atol + rtol * |ref|``."""

    atol: float
    rtol: float


# Defaults per reference dtype. Exporters reorder and fuse float arithmetic, so float32 gets
# a few hundred ulps of headroom; integer and bool outputs must match exactly.
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(1e-7, 1e-6),
    "float32": Tolerance(1e-4, 1e-3),
    "float16": Tolerance(1e-2, 1e-2),
    "bfloat16": Tolerance(2e-2, 2e-2),
    "integer": Tolerance(0.0, 0.0),
    "bool": Tolerance(0.0, 0.0),
}


def _dtype_key(dtype: np.dtype) -> str:
    if dtype == np.bool_:
        return "bool"
    if np.issubdtype(dtype, np.integer):
        return "integer"
    if dtype.name in DEFAULT_TOLERANCES:
        return dtype.name
    return "float32"


def default_tolerance(dtype: np.dtype, atol: float | None = None, rtol: float | None = None) -> Tolerance:
    """The dtype's default, with ``atol`` / ``rtol`` overriding it (exact dtypes stay exact)."""
    key = _dtype_key(np.dtype(dtype))
    base = DEFAULT_TOLERANCES[key]
    if key in ("integer", "bool"):
        return base
    return Tolerance(base.atol if atol is None else atol, base.rtol if rtol is None else rtol)


def compare_output(
    name: str, ref: np.ndarray, got: np.ndarray, tol: Tolerance | None = None, *, topk: int = 5
) -> OutputParity:
    """Metrics and verdict for one output. NaN/Inf on either side are reported; they pass only
    where both sides have the same non-finite value at the same position."""
    ref = np.asarray(ref)
    got = np.asarray(got)
    tol = tol or default_tolerance(ref.dtype)
    exact = _dtype_key(ref.dtype) in ("integer", "bool")
    if ref.shape != got.shape:
        return OutputParity(
            name, tuple(ref.shape), ref.dtype.name, float("inf"), float("inf"), float("inf"), None,
            tol.atol, tol.rtol, False, int(max(ref.size, got.size)),
            error=f"shape mismatch: reference {list(ref.shape)} vs candidate {list(got.shape)}",
        )
    r = ref.astype(np.float64)
    g = got.astype(np.float64)
    if r.size == 0:
        return OutputParity(name, tuple(ref.shape), ref.dtype.name, 0.0, 0.0, 0.0, 1.0, tol.atol, tol.rtol, True)

    nonfinite_note = _nonfinite_note(r, g)
    both_same_nonfinite = (~np.isfinite(r)) & (~np.isfinite(g)) & ((r == g) | (np.isnan(r) & np.isnan(g)))
    diff = np.abs(r - g)
    diff = np.where(both_same_nonfinite, 0.0, diff)
    diff = np.where(np.isnan(diff), np.inf, diff)  # NaN on one side only: infinitely wrong
    if exact:
        bad = diff > 0
    else:
        allowed = tol.atol + tol.rtol * np.abs(np.where(np.isfinite(r), r, 0.0))
        bad = diff > allowed
    mismatched = int(bad.sum())
    if mismatched:
        excess = np.where(bad, diff - (0 if exact else allowed), -np.inf)
        worst = np.unravel_index(int(np.argmax(excess)), r.shape)
    else:
        worst = np.unravel_index(int(np.argmax(diff)), r.shape)
    finite = np.isfinite(r) & np.isfinite(g)
    denom = np.abs(r)
    meaningful = finite & (denom > max(tol.atol, np.finfo(np.float32).tiny))
    max_rel = float(np.max(diff[meaningful] / denom[meaningful])) if meaningful.any() else 0.0
    return OutputParity(
        name=name,
        shape=tuple(int(s) for s in ref.shape),
        dtype=ref.dtype.name,
        max_abs=float(diff.max()),
        max_rel=max_rel,
        mean_abs=float(diff.mean()),
        cosine=_cosine(r[finite], g[finite]),
        atol=tol.atol,
        rtol=tol.rtol,
        passed=mismatched == 0,
        mismatched=mismatched,
        worst_index=tuple(int(i) for i in worst),
        nan_or_inf=nonfinite_note,
        topk_agreement=_topk_agreement(r, g, topk) if not exact else None,
    )


def compare_outputs(
    names: Sequence[str],
    refs: Sequence[np.ndarray],
    gots: Sequence[np.ndarray],
    tolerances: Mapping[str, Tolerance] | None = None,
    *,
    atol: float | None = None,
    rtol: float | None = None,
) -> list[OutputParity]:
    """Compare outputs pairwise, in order. ``tolerances`` overrides per output name."""
    results = []
    for name, ref, got in zip(names, refs, gots, strict=True):
        tol = (tolerances or {}).get(name) or default_tolerance(np.asarray(ref).dtype, atol, rtol)
        results.append(compare_output(name, ref, got, tol))
    return results


def _cosine(a: np.ndarray, b: np.ndarray) -> float | None:
    if a.size == 0:
        return None
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a.ravel(), b.ravel()) / (na * nb))


def _nonfinite_note(r: np.ndarray, g: np.ndarray) -> str | None:
    parts = []
    for side, arr in (("reference", r), ("candidate", g)):
        n_nan, n_inf = int(np.isnan(arr).sum()), int(np.isinf(arr).sum())
        if n_nan or n_inf:
            parts.append(f"{side}: {n_nan} NaN, {n_inf} Inf")
    return "; ".join(parts) or None


def _topk_agreement(r: np.ndarray, g: np.ndarray, k: int) -> float | None:
    """For classifier-like outputs ([..., C] with C > 1): the fraction of rows whose top-1 agrees."""
    if r.ndim < 2 or r.shape[-1] < 2 or not (np.isfinite(r).all() and np.isfinite(g).all()):
        return None
    ra = r.reshape(-1, r.shape[-1]).argmax(-1)
    ga = g.reshape(-1, g.shape[-1]).argmax(-1)
    return float((ra == ga).mean())
