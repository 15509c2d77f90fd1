"""Plans: which parity cases run (seeds, sweep), and how a timing loop runs (warm-up, runs, budget)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UsageError

__all__ = ["ParityPlan", "TimingPlan"]


@dataclass(frozen=True)
class ParityPlan:
    """Inputs to check: seeds at the export sizes, plus a sweep over every dynamic axis."""

    seeds: tuple[int, ...] = (0, 1, 2)
    sweep: bool = True

    @classmethod
    def from_seed(cls, seed: int, count: int = 3, *, sweep: bool = True) -> ParityPlan:
        """``count`` consecutive seeds from ``seed``."""
        return cls(tuple(seed + i for i in range(count)), sweep)


@dataclass(frozen=True)
class TimingPlan:
    """Warm-up runs, then ``runs`` timed runs, or as many as fit in ``duration_s`` (at least ``min_runs``)."""

    warmup: int = 10
    runs: int = 100
    duration_s: float | None = None
    min_runs: int = 3

    def check(self) -> TimingPlan:
        """Refuse nonsense (a ``UsageError``); the plan itself otherwise. :class:`BenchConfig` calls it."""
        if self.warmup < 0:
            raise UsageError(f"--warmup {self.warmup} is negative", "give 0 or more warm-up runs")
        if self.duration_s is None and self.runs < 1:
            raise UsageError(f"--runs {self.runs} must be at least 1", "give --runs 1 or more, or --duration SECONDS")
        if self.duration_s is not None and not (self.duration_s > 0 and math.isfinite(self.duration_s)):
            raise UsageError(f"--duration {self.duration_s} must be a positive number of seconds", "e.g. --duration 10")
        return self
