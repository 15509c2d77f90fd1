"""Bisection over node segments: which nodes must stay unconverted (fp32) for a variant to meet its budget.

The algorithm of onnxconverter-common's ``auto_mixed_precision``, on top of any converter:
``attempt(excluded)`` builds and measures a candidate with ``excluded`` nodes left alone. One segment
holds every candidate node at first; the largest untried segment is converted together with the
segments already proven good (everything else excluded). A pass marks it good, a failure splits it in
two, and a failing single node is excluded for good. The first attempt converts everything, so a model
that is fine costs one attempt; k bad nodes among n cost about 2·k·log2(n) attempts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .._util import Progress, no_progress

__all__ = ["SearchOutcome", "bisect_exclusions"]


@dataclass(frozen=True)
class SearchOutcome:
    """Nodes that failed alone, nodes never tried within the attempt limit, and why each failed."""

    excluded: tuple[str, ...]
    unresolved: tuple[str, ...]
    attempts: int
    failures: dict[str, str]
    final: Any  # the last all-good attempt's measurement, when the search ended on one


def bisect_exclusions(
    candidates: Sequence[str],
    attempt: Callable[[list[str]], Any],
    *,
    always_excluded: Sequence[str] = (),
    max_attempts: int = 48,
    progress: Progress | None = None,
) -> SearchOutcome:
    """Search with ``attempt(excluded) -> result`` (``result.passed``, ``result.failures``)."""
    say = progress or no_progress
    fixed = list(always_excluded)
    segments: list[list] = [[0, len(candidates), "untried"]] if candidates else []
    attempts, failures, final = 0, {}, None
    while attempts < max_attempts:
        untried = [s for s in segments if s[2] == "untried"]
        if not untried:
            break
        seg = max(untried, key=lambda s: s[1] - s[0])
        rest = [candidates[i] for s in segments if s is not seg and s[2] != "good" for i in range(s[0], s[1])]
        result = attempt(fixed + rest)
        attempts += 1
        if result.passed:
            seg[2] = "good"
            if all(s[2] != "untried" for s in segments):
                final = result
        elif seg[1] - seg[0] == 1:
            seg[2] = "bad"
            failures[candidates[seg[0]]] = "; ".join(result.failures[:2])
        else:
            mid = (seg[0] + seg[1]) // 2
            i = segments.index(seg)
            segments[i : i + 1] = [[seg[0], mid, "untried"], [mid, seg[1], "untried"]]
        say(f"fp16 search attempt {attempts}: {seg[1] - seg[0]} node(s) {'pass' if result.passed else 'fail'}")
    bad = tuple(candidates[s[0]] for s in segments if s[2] == "bad")
    unresolved = tuple(candidates[i] for s in segments if s[2] == "untried" for i in range(s[0], s[1]))
    return SearchOutcome(bad, unresolved, attempts, failures, None if unresolved else final)
