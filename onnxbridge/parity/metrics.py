"""Pure parity metrics: compare reference outputs with candidate outputs, per output."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np

from ..options import Tolerance, Tolerances, parse_tolerances
from ..results import ERROR_BIN_EDGES, OutputParity

__all__ = [
    "Tolerance",
    "DEFAULT_TOLERANCES",
    "Tolerances",
    "ERROR_BIN_EDGES",
    "default_tolerance",
    "compare_output",
    "compare_outputs",
    "parse_tolerances",
    "looser_dtype",
    "output_tolerance",
    "error_histogram",
    "row_cosines",
    "argmax_agreement",
    "decisive_rows",
]


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


# Float dtypes from loosest to tightest default tolerance.
_LOOSENESS = ("bfloat16", "float16", "float32", "float64")


def looser_dtype(*dtypes: np.dtype | str | None) -> np.dtype | None:
    """The float dtype with the loosest default tolerance among ``dtypes`` (None if none is float)."""
    # "bfloat16" is a numpy dtype name only once ml_dtypes is imported: take the name as it is
    names = [d if isinstance(d, str) and d == "bfloat16" else np.dtype(d).name for d in dtypes if d is not None]
    floats = [n for n in names if n in _LOOSENESS]
    if not floats:
        return None
    return np.dtype(min(floats, key=_LOOSENESS.index)) if "bfloat16" not in floats else _bfloat16()


def _bfloat16() -> np.dtype:
    import ml_dtypes

    dtype: np.dtype = np.dtype(ml_dtypes.bfloat16)
    return dtype


def default_tolerance(dtype: np.dtype, atol: float | None = None, rtol: float | None = None) -> Tolerance:
    """The dtype's default, with ``atol`` / ``rtol`` overriding it (exact dtypes stay exact)."""
    key = _dtype_key(np.dtype(dtype))
    base = DEFAULT_TOLERANCES[key]
    if key in ("integer", "bool"):
        return base
    return Tolerance(base.atol if atol is None else atol, base.rtol if rtol is None else rtol)


def output_tolerance(tolerances: Tolerances, name: str | None, dtype: np.dtype) -> Tolerance:
    """The tolerance an output (or, ``name`` None, any other tensor) of ``dtype`` is judged at: ``--tol``
    for a named output (its rtol defaulting to the dtype's), else ``--atol`` / ``--rtol`` over the dtype
    default (integers and bools exact)."""
    override = tolerances.for_output(name) if name is not None else None
    if override is not None:
        base = default_tolerance(dtype)
        return Tolerance(override.atol, base.rtol if override.rtol is None else override.rtol)
    return default_tolerance(dtype, tolerances.atol, tolerances.rtol)


def compare_output(
    name: str, ref: np.ndarray, got: np.ndarray, tol: Tolerance | None = None, *, topk: int = 5
) -> OutputParity:
    """Metrics and verdict for one output. NaN/Inf on either side are reported; they pass only
    where both sides have the same non-finite value at the same position.

    Without ``tol`` the default of the looser of the two dtypes applies (a float16 candidate
    against a float32 reference is judged at float16 tolerances). A tolerance of 0/0 is exact.
    Classifier-like outputs (``[..., C]``, C > 1, float) also get top-1 and top-k agreement.
    """
    ref = np.asarray(ref)
    got = np.asarray(got)
    classes = _dtype_key(ref.dtype) not in ("integer", "bool")
    base = default_tolerance((looser_dtype(ref.dtype, got.dtype) if classes else None) or ref.dtype)
    tol = tol or base
    rtol = tol.rtol if tol.rtol is not None else base.rtol or 0.0  # every dtype's default has an rtol
    if ref.shape != got.shape:
        return OutputParity(
            name,
            tuple(ref.shape),
            ref.dtype.name,
            float("inf"),
            float("inf"),
            float("inf"),
            None,
            tol.atol,
            rtol,
            False,
            int(max(ref.size, got.size)),
            error=f"shape mismatch: reference {list(ref.shape)} vs candidate {list(got.shape)}",
        )
    r = ref.astype(np.float64)
    g = got.astype(np.float64)
    if r.size == 0:
        return OutputParity(name, tuple(ref.shape), ref.dtype.name, 0.0, 0.0, 0.0, 1.0, tol.atol, rtol, True)

    nonfinite_note = _nonfinite_note(r, g)
    both_same_nonfinite = (~np.isfinite(r)) & (~np.isfinite(g)) & ((r == g) | (np.isnan(r) & np.isnan(g)))
    diff = np.abs(r - g)
    diff = np.where(both_same_nonfinite, 0.0, diff)
    diff = np.where(np.isnan(diff), np.inf, diff)  # NaN on one side only: infinitely wrong
    allowed = tol.atol + rtol * np.abs(np.where(np.isfinite(r), r, 0.0))
    bad = diff > allowed
    mismatched = int(bad.sum())
    if mismatched:
        excess = np.where(bad, diff - allowed, -np.inf)
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
        rtol=rtol,
        passed=mismatched == 0,
        mismatched=mismatched,
        worst_index=tuple(int(i) for i in worst),
        nan_or_inf=nonfinite_note,
        topk_agreement=_topk_agreement(r, g, topk) if classes else None,
        top1_agreement=_topk_agreement(r, g, 1) if classes else None,
        topk=_k(r, topk) if classes else None,
        error_histogram=error_histogram(diff),
    )


def compare_outputs(
    names: Sequence[str],
    refs: Sequence[np.ndarray],
    gots: Sequence[np.ndarray],
    tolerances: Tolerances | Mapping[str, Tolerance] | None = None,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    compute_dtype: np.dtype | str | Mapping[str, np.dtype | str | None] | None = None,
) -> list[OutputParity]:
    """Compare outputs pairwise, in order.

    Tolerances, first match wins: ``tolerances[name]`` (``--tol``), then ``atol`` / ``rtol``
    over the dtype default; the dtype is the loosest of the reference's, the candidate's and
    ``compute_dtype`` (the precision the candidate computes in, e.g. float16 inside a model
    with float32 inputs and outputs; a mapping gives it per output, so that only outputs that
    depend on float16 values are loosened). Integer and bool outputs stay exact unless ``--tol``
    names them.
    """
    if not isinstance(tolerances, Tolerances):
        tolerances = Tolerances(atol, rtol, tuple((tolerances or {}).items()))
    atol, rtol = tolerances.atol, tolerances.rtol
    results = []
    for name, ref, got in zip(names, refs, gots, strict=True):
        ref, got = np.asarray(ref), np.asarray(got)
        is_float = _dtype_key(ref.dtype) not in ("integer", "bool")
        narrow = compute_dtype.get(name) if isinstance(compute_dtype, Mapping) else compute_dtype
        dtype = (looser_dtype(ref.dtype, got.dtype, narrow) if is_float else None) or ref.dtype
        tol = output_tolerance(tolerances, name, dtype)
        if tolerances.for_output(name) is not None:
            source = "--tol"
        else:
            exact = _dtype_key(dtype) in ("integer", "bool")
            if not exact and (atol is not None or rtol is not None):
                source = "--atol/--rtol" + (f" over {dtype.name} default" if None in (atol, rtol) else "")
            else:
                source = f"{_dtype_key(dtype)} default" if exact else f"{dtype.name} default"
        out = compare_output(name, ref, got, tol)
        results.append(dataclasses.replace(out, tolerance_from=source))
    return results


def error_histogram(diff: np.ndarray) -> tuple[int, ...]:
    """Counts of ``|got - ref|`` per bin of :data:`ERROR_BIN_EDGES` (exact, decades, > 1e2)."""
    d = np.asarray(diff, dtype=np.float64).ravel()
    d = np.where(np.isnan(d), np.inf, d)
    exact = int((d == 0).sum())
    nonzero = d[d > 0]
    edges = np.asarray(ERROR_BIN_EDGES[1:-1])
    # bin i (1-based) holds values in (edges[i-2], edges[i-1]]; values <= 1e-9 go to bin 1
    idx = np.searchsorted(edges, nonzero, side="left")
    counts = np.bincount(idx, minlength=len(edges) + 1)
    return (exact,) + tuple(int(c) for c in counts)


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


def _k(r: np.ndarray, k: int) -> int | None:
    if r.ndim < 2 or r.shape[-1] < 2:
        return None
    return max(1, min(k, int(r.shape[-1]) - 1))


def _topk_agreement(r: np.ndarray, g: np.ndarray, k: int) -> float | None:
    """For classifier-like outputs ([..., C] with C > 1): the mean overlap of the top-k classes
    per row (k=1: the fraction of rows whose argmax agrees). Order within the top k is ignored."""
    kk = _k(r, k)
    if kk is None or not (np.isfinite(r).all() and np.isfinite(g).all()):
        return None
    rr = r.reshape(-1, r.shape[-1])
    gg = g.reshape(-1, g.shape[-1])
    if kk == 1:
        return float((rr.argmax(-1) == gg.argmax(-1)).mean())
    rt = np.argpartition(-rr, kk - 1, axis=-1)[:, :kk]
    gt = np.argpartition(-gg, kk - 1, axis=-1)[:, :kk]
    overlap = [len(set(a.tolist()) & set(b.tolist())) / kk for a, b in zip(rt, gt)]
    return float(np.mean(overlap))


# ------------------------------------------------------------------ task-level metrics (deployment variants)


def _rows(a: np.ndarray) -> np.ndarray:
    """Rows over the last axis: a token's logits or hidden state, an image's class scores."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return a.reshape(1, 1)
    return a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a.reshape(1, -1)


def row_cosines(ref: np.ndarray, got: np.ndarray) -> np.ndarray:
    """Cosine of each row (last axis) of ``got`` with the same row of ``ref``; two zero rows agree (1.0).
    Non-finite values count as 0 on the candidate side."""
    r, g = _rows(ref), _rows(got)
    g = np.where(np.isfinite(g), g, 0.0)
    num = (r * g).sum(axis=1)
    den = np.sqrt((r * r).sum(axis=1) * (g * g).sum(axis=1))
    same = (r == g).all(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.where(same, 1.0, 0.0))


def argmax_agreement(
    ref: np.ndarray, got: np.ndarray, k: int = 1, rows: np.ndarray | None = None
) -> tuple[int, int] | None:
    """(agreeing rows, rows compared): rows whose reference argmax (over the last axis) is among the
    candidate's top ``k``. For classifier logits that is top-1 / top-k agreement; for token-classification
    or LM logits ``[batch, seq, vocab]`` the per-position argmax agreement. ``rows`` (a boolean mask)
    limits the count. None when the last axis has fewer than 2 entries."""
    r, g = _rows(ref), _rows(got)
    if r.shape[1] < 2:
        return None
    g = np.where(np.isfinite(g), g, -np.inf)
    want = r.argmax(axis=1)
    kk = min(k, g.shape[1])
    top = np.argpartition(-g, kk - 1, axis=1)[:, :kk] if kk > 1 else g.argmax(axis=1)[:, None]
    hit = (top == want[:, None]).any(axis=1)
    if rows is not None:
        hit = hit[rows]
    return int(hit.sum()), int(hit.size)


def decisive_rows(ref: np.ndarray, margin: float) -> np.ndarray:
    """Rows whose reference top-2 gap is at least ``margin`` row standard deviations: the argmax of a
    near-tie is decided by rounding noise, so agreement on it says nothing about a variant."""
    r = _rows(ref)
    if r.shape[1] < 2:
        return np.zeros(r.shape[0], dtype=bool)
    two = np.partition(r, r.shape[1] - 2, axis=1)[:, -2:]
    std = r.std(axis=1)
    return (two[:, 1] - two[:, 0]) >= margin * np.where(std > 0, std, 1.0)
