"""The precision oracle: the source run in float64, to tell a numerically sensitive model from a wrong export.

Deep random-weight networks (and some trained ones) amplify rounding: the source's own float32 output can
be further from the float64 truth than any fixed tolerance allows, and so is a correct ONNX file. Where the
reference runner can run the same source in float64 (:class:`Float64Reference`), an output that fails the
tolerance against the source is judged again against float64: it passes when its distance to float64 is
within the tolerance, or at most ``multiple`` times the source's own float32 distance to float64 (the
source itself is that far from the truth), as long as the source's own noise is under 1% of the output's
scale (a chaotic source vouches for nothing). The three distances are kept on the output
(:class:`~onnxbridge.results.OracleDistances`); a planted error in a late layer is far more than twice the
source's rounding, so the oracle never passes it. Without a float64 run (SavedModel, TFLite, ONNX against
ONNX) the fixed tolerance decides, and the report says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from .._util import first_line
from ..results import OracleDistances, OracleSummary, OutputParity
from ..runtime.sessions import Runner

__all__ = ["DEFAULT_ORACLE_MULTIPLE", "Float64Reference", "PrecisionOracle", "max_distance"]

DEFAULT_ORACLE_MULTIPLE = 2.0
# The multiple rule vouches only for a source whose own float32 noise is below this share of the output's
# scale: past it the source is chaotic, and twice its noise could hide a real error of a few percent.
MAX_SOURCE_NOISE = 0.01


@runtime_checkable
class Float64Reference(Protocol):
    """A reference runner that can run its source again in float64 (float inputs cast, outputs float64).

    ``float64_runner`` raises when this source cannot (a construct without a float64 kernel, no config to
    rebuild it from); ``float64_how`` says how the float64 run is made, for the report."""

    float64_how: str

    def float64_runner(self) -> Runner: ...


def max_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b|`` in float64; a NaN on one side only is infinitely far, the same non-finite value on
    both sides is 0."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        return float("inf")
    if x.size == 0:
        return 0.0
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    d = np.where(same, 0.0, np.abs(x - y))
    return float(np.max(np.where(np.isnan(d), np.inf, d)))


class PrecisionOracle:
    """Judges again, against the source in float64, the float32 outputs that failed the tolerance.

    Built once per parity check from the reference runner; the float64 copy is made on first need (a model
    that passes at the tolerance never pays for it). ``multiple`` <= 0 switches the oracle off."""

    def __init__(self, reference: Runner, multiple: float = DEFAULT_ORACLE_MULTIPLE) -> None:
        self.reference = reference
        self.multiple = float(multiple)
        self._runner: Runner | None = None
        self._why_not: str | None = None
        self.decided = 0
        self.consulted = 0
        if self.multiple <= 0:
            self._why_not = "switched off (--oracle-multiple 0)"
        elif not isinstance(reference, Float64Reference):
            self._why_not = f"the reference ({reference.name}) cannot run in float64"

    def _fp64(self) -> Runner | None:
        if self._runner is None and self._why_not is None:
            assert isinstance(self.reference, Float64Reference)
            try:
                self._runner = self.reference.float64_runner()
            except Exception as e:  # no float64 run of this source: the tolerance alone decides
                self._why_not = f"the source could not be run in float64 ({first_line(e, 200)})"
        return self._runner

    def judge(
        self,
        feeds: Mapping[str, np.ndarray],
        refs: Sequence[np.ndarray],
        gots: Sequence[np.ndarray],
        outputs: Sequence[OutputParity],
        keep: Sequence[np.ndarray | None],
        narrow: frozenset[str] = frozenset(),
    ) -> list[OutputParity]:
        """``outputs`` with each float32 output that failed the tolerance judged against float64 (``keep``:
        per output, the positions compared, None for all; the masked ones are left out here too; ``narrow``:
        outputs computed in float16 / bfloat16, judged at that type's tolerance alone)."""
        todo = [i for i, o in enumerate(outputs) if _eligible(o) and o.name not in narrow]
        if not todo or self._fp64() is None:
            return list(outputs)
        runner = self._runner
        assert runner is not None
        try:
            truth = runner.run({k: _widen(v) for k, v in feeds.items()})
        except Exception as e:
            self._why_not = f"the float64 run failed ({first_line(e, 200)})"
            return list(outputs)
        if len(truth) != len(refs):
            self._why_not = f"the float64 run gave {len(truth)} outputs, the source {len(refs)}"
            return list(outputs)
        out = list(outputs)
        for i in todo:
            out[i] = self._judge_one(out[i], refs[i], gots[i], truth[i], keep[i])
        return out

    def _judge_one(
        self, o: OutputParity, ref: np.ndarray, got: np.ndarray, truth: np.ndarray, keep: np.ndarray | None
    ) -> OutputParity:
        from .metrics import Tolerance, compare_output

        ref, got, truth = (_masked(np.asarray(a, dtype=np.float64), keep) for a in (ref, got, truth))
        if truth.shape != ref.shape:
            return o
        self.consulted += 1
        source = max_distance(ref, truth)
        onnx = max_distance(got, truth)
        within_tol = compare_output(o.name, truth, got, Tolerance(o.atol, o.rtol)).passed
        scale = float(np.max(np.abs(truth))) if truth.size and np.isfinite(truth).all() else float("inf")
        within_multiple = bool(
            np.isfinite(onnx)
            and np.isfinite(source)
            and onnx <= self.multiple * source
            and source <= MAX_SOURCE_NOISE * scale
        )
        decided = within_tol or within_multiple
        self.decided += int(decided)
        distances = OracleDistances(
            source,
            onnx,
            max_distance(got, ref),
            self.multiple,
            decided,
            "tolerance" if within_tol else "multiple" if within_multiple else None,
        )
        return dataclasses.replace(o, passed=o.passed or decided, oracle=distances)

    def summary(self) -> OracleSummary:
        """What the oracle did in this check, for the report."""
        how = self.reference.float64_how if isinstance(self.reference, Float64Reference) else None
        return OracleSummary(
            available=self._why_not is None,
            how=how,
            multiple=self.multiple,
            consulted=self.consulted,
            decided=self.decided,
            why_not=self._why_not,
        )


def _eligible(o: OutputParity) -> bool:
    """A float32 output compared and failed on numbers (not on shape)."""
    return not o.passed and o.error is None and o.dtype == "float32"


def _widen(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else a


def _masked(a: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
    if keep is None:
        return a
    from .masks import apply_keep

    return apply_keep(a, keep)
