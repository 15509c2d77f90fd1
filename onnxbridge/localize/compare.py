"""One number per compared tensor, comparable across tensors of any scale.

``score = max |got - ref| / (atol + rtol * |ref|)``: at most 1 passes the elementwise check the parity
report applies (:func:`onnxbridge.parity.metrics.compare_output`), above 1 fails, and it orders layers
along the model for the per-layer plot. Tolerances are the parity check's (dtype defaults, ``--atol`` /
``--rtol``, the narrowest dtype a model computes in). Unlike ``compare_output`` (float64, histograms,
top-k: right for a few outputs), this runs on hundreds of intermediate tensors, so it works in float32
chunks with bounded temporaries (BERT-4: 0.6 s instead of 2.6 s for the diffs of one pass).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..options import Tolerance, Tolerances
from ..parity.metrics import looser_dtype, output_tolerance

__all__ = ["TensorDiff", "Scorer", "quick_score"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class TensorDiff:
    """One tensor compared: its worst score and the figures behind it."""

    name: str
    shape: tuple[int, ...]
    max_abs: float
    mean_abs: float
    score: float  # > 1 fails; inf for a size mismatch or NaN / Inf on one side only
    mismatched: float  # fraction of elements over tolerance
    atol: float
    rtol: float
    note: str = ""

    @property
    def passed(self) -> bool:
        return self.score <= 1.0


@dataclass(frozen=True)
class Scorer:
    """Compares tensors with the parity check's tolerances."""

    tolerances: Tolerances = field(default_factory=Tolerances)
    compute_dtype: str | None = None  # the narrowest float a compared model computes in (float16 ...)

    def tolerance(self, ref: np.ndarray, got: np.ndarray, output: str | None = None) -> Tolerance:
        """As the parity check judges it: ``--tol`` for a named graph output, else ``--atol`` / ``--rtol``
        over the default of the loosest dtype involved (integers and bools exact)."""
        exact = ref.dtype.kind in "iub" and got.dtype.kind in "iub"
        dtype = ref.dtype if exact else (looser_dtype(ref.dtype, got.dtype, self.compute_dtype) or ref.dtype)
        return output_tolerance(self.tolerances, output, dtype)

    def diff(self, name: str, ref: np.ndarray, got: np.ndarray, *, output: str | None = None) -> TensorDiff:
        """Compare one tensor, chunk by chunk; a same-size reshape (a view kept by the framework) is
        compared as reshaped, a size mismatch scores inf. ``output``: the graph output it is (``--tol``)."""
        ref, got = np.asarray(ref), np.asarray(got)
        tol = self.tolerance(ref, got, output)
        rtol = float(tol.rtol or 0.0)
        shape = tuple(int(s) for s in ref.shape)
        if ref.shape != got.shape:
            if ref.size != got.size:
                inf = float("inf")
                return TensorDiff(
                    name, shape, inf, inf, inf, 1.0, tol.atol, rtol, f"shape {list(ref.shape)} vs {list(got.shape)}"
                )
            got = got.reshape(ref.shape)
        if ref.size == 0:
            return TensorDiff(name, shape, 0.0, 0.0, 0.0, 0.0, tol.atol, rtol)
        wide = np.float64 in (ref.dtype, got.dtype) or ref.dtype.kind in "iub"
        ct = np.float64 if wide else np.float32
        acc = _Acc()
        rf, gf = ref.reshape(-1), got.reshape(-1)
        for s in range(0, ref.size, _CHUNK):
            acc.add(
                rf[s : s + _CHUNK].astype(ct, copy=False), gf[s : s + _CHUNK].astype(ct, copy=False), tol.atol, rtol
            )
        return TensorDiff(
            name,
            shape,
            acc.max_abs,
            acc.sum_abs / acc.finite if acc.finite else float("inf"),
            acc.score,
            acc.over / ref.size,
            tol.atol,
            rtol,
            "; ".join(sorted(acc.notes)),
        )


class _Acc:
    """Running figures over the chunks of one comparison."""

    def __init__(self) -> None:
        self.max_abs = self.sum_abs = self.score = 0.0
        self.over = self.finite = 0
        self.notes: set[str] = set()

    def add(self, r: np.ndarray, g: np.ndarray, atol: float, rtol: float) -> None:
        d = np.subtract(g, r)
        np.abs(d, out=d)
        fin = np.isfinite(d)
        if not fin.all():
            same = (np.isnan(r) & np.isnan(g)) | (np.isinf(r) & (r == g))
            d[~fin & same] = 0.0
            one_sided = ~fin & ~same
            if one_sided.any():
                self.notes.add("NaN/Inf on one side only")
                d[one_sided] = np.inf
            fin = np.isfinite(d)
        bound = np.abs(r)
        bound[~np.isfinite(bound)] = 0.0
        bound *= rtol
        bound += atol
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.divide(d, bound, out=bound)
        ratio[d == 0] = 0.0
        self.max_abs = max(self.max_abs, float(d.max()))
        self.sum_abs += float(d[fin].sum())
        self.finite += int(fin.sum())
        self.score = max(self.score, float(np.nanmax(ratio)))
        self.over += int((ratio > 1).sum())


def quick_score(ref: np.ndarray, got: np.ndarray, k: int = 4096) -> float:
    """Mean |got - ref| over the first ``k`` elements of the first batch item: cheap, to choose among
    same-shaped candidates (inf when nothing finite compares)."""
    ref, got = np.asarray(ref), np.asarray(got)
    if ref.ndim and got.ndim and ref.shape[0] > 1 and ref.shape[:1] == got.shape[:1]:
        ref, got = ref[:1], got[:1]  # cheap even when ``got`` is a transposed view
    r = ref.reshape(-1)[:k].astype(np.float64)
    g = got.reshape(-1)[:k].astype(np.float64)
    with np.errstate(invalid="ignore"):
        v = float(np.nanmean(np.abs(g - r))) if r.size else 0.0
    return v if np.isfinite(v) else float("inf")
