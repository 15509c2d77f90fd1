"""A variant's accuracy against its reference, judged against a budget.

The metrics are parity/metrics' pure functions, gathered per output over every evaluation case:
cosines take the worst case (one bad input is not averaged away), argmax agreements pool the rows
of every case (a batch-2 classifier has two rows per case: per-case fractions would be 0, 0.5 or 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..options import BUDGET_FLOORS, Budget
from ..parity.metrics import argmax_agreement, decisive_rows, row_cosines
from ..results import GenerationJudgement, OutputAccuracy

__all__ = ["Judged", "measure", "judge_accuracy", "judge_generation"]


@dataclass
class _Acc:
    name: str
    max_abs: float = 0.0
    cosine: float = 1.0
    cosine_min: float = 1.0
    nonfinite: int = 0
    counts: dict[str, list[int]] = field(
        default_factory=lambda: {"top1": [0, 0], "top1_decisive": [0, 0], "top5": [0, 0]}
    )

    def add(self, key: str, hit: tuple[int, int] | None) -> None:
        if hit is not None:
            self.counts[key][0] += hit[0]
            self.counts[key][1] += hit[1]

    def result(self) -> OutputAccuracy:
        frac = {k: (h / n if n else None) for k, (h, n) in self.counts.items()}
        return OutputAccuracy(
            self.name,
            self.max_abs,
            self.cosine,
            self.cosine_min,
            frac["top1"],
            frac["top1_decisive"],
            frac["top5"],
            self.counts["top1_decisive"][1],
            self.counts["top1"][1],
            self.nonfinite,
        )


def measure(
    refs: Sequence[Sequence[np.ndarray]], gots: Sequence[Sequence[np.ndarray]], names: Sequence[str], margin: float
) -> tuple[OutputAccuracy, ...]:
    """Per float output: max_abs, worst-case cosine, worst row cosine, pooled top-1 / decisive top-1 /
    top-5 agreement, non-finite count. ``refs`` / ``gots``: per case, the outputs in ``names`` order.
    Integer and bool outputs are not measured (a shape mismatch raises ``ValueError``)."""
    accs: dict[str, _Acc] = {}
    for ref_case, got_case in zip(refs, gots, strict=True):
        for name, ref, got in zip(names, ref_case, got_case, strict=True):
            r, g = np.asarray(ref), np.asarray(got)
            if r.dtype.kind != "f":
                continue
            if r.shape != g.shape:
                raise ValueError(
                    f"output {name}: the variant gives shape {list(g.shape)}, the reference {list(r.shape)}"
                )
            acc = accs.setdefault(name, _Acc(name))
            r64, g64 = r.astype(np.float64), g.astype(np.float64)
            bad = ~np.isfinite(g64) & np.isfinite(r64)
            acc.nonfinite += int(bad.sum())
            if bad.any():
                acc.max_abs = float("inf")
            elif r.size:
                acc.max_abs = max(acc.max_abs, float(np.nanmax(np.abs(r64 - g64))))
            acc.cosine = min(acc.cosine, float(row_cosines(r64.ravel(), g64.ravel())[0]) if r.size else 1.0)
            if r.size:
                acc.cosine_min = min(acc.cosine_min, float(row_cosines(r64, g64).min()))
            acc.add("top1", argmax_agreement(r64, g64))
            acc.add("top5", argmax_agreement(r64, g64, k=5))
            acc.add("top1_decisive", argmax_agreement(r64, g64, rows=decisive_rows(r64, margin)))
    return tuple(a.result() for a in accs.values())


@dataclass(frozen=True)
class Judged:
    """Accuracy per output, and every limit of the budget it broke (empty: within budget)."""

    outputs: tuple[OutputAccuracy, ...]
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def judge_accuracy(outputs: tuple[OutputAccuracy, ...], budget: Budget) -> Judged:
    """Each limit of ``budget`` against each output that has the metric (top-1 needs a class axis)."""
    failures = []
    for metric, limit in budget.limits:
        for o in outputs:
            value = o.value(metric)
            if value is None:
                continue
            if metric in BUDGET_FLOORS and value < limit:
                failures.append(f"{o.name}: {metric} {value:.6g} < {limit:g}")
            elif metric not in BUDGET_FLOORS and value > limit:
                failures.append(f"{o.name}: {metric} {value:.6g} > {limit:g}")
    return Judged(outputs, tuple(failures))


def judge_generation(judged: GenerationJudgement, budget: Budget) -> tuple[str, ...]:
    """Each generation limit of ``budget`` (``token_agreement``, ``logit_drift``, ``perplexity_ratio``)
    that a with-past folder's copy broke, one line each naming the metric (empty: within budget)."""
    failures = []
    for metric, limit in budget.limits:
        value = judged.value(metric)
        if value is None:
            continue
        floor = metric in BUDGET_FLOORS
        if (value < limit) if floor else not (value <= limit):  # a NaN perplexity fails
            failures.append(f"{metric} {value:.4g} {'<' if floor else '>'} {limit:g}")
    return tuple(failures)
