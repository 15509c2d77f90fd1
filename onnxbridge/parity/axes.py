"""What the sweep says about each dynamic axis: the sizes that broke it, the smallest size the source
runs, and whether the exported model is valid on the whole range the user declared."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from ..results import AxisOutcome, AxisVerdict, CaseKind, ParityCase, Side
from ..specs import SizeRange
from .cases import AxisBounds, InputCase, PlannedCase, smallest_runnable
from .inputs import REDRAWS

if TYPE_CHECKING:
    from ..runtime.sessions import Runner

__all__ = ["smallest_runnable_cases", "judge_axes", "axis_breaks"]


def _axis_cases(results: Sequence[ParityCase], axis: str) -> list[ParityCase]:
    return [c for c in results if c.axis == axis and c.size is not None]


def _cannot_run(cases: Sequence[ParityCase]) -> list[int]:
    return sorted(c.size for c in cases if c.kind is CaseKind.SOURCE_LIMIT and c.size is not None)


def _ran(cases: Sequence[ParityCase], export: int) -> list[int]:
    return sorted(
        {export}
        | {
            c.size
            for c in cases
            if c.kind is not CaseKind.SOURCE_LIMIT and c.failed_side is not Side.REFERENCE and c.size is not None
        }
    )


def smallest_runnable_cases(
    results: Sequence[ParityCase],
    export_sizes: Mapping[str, int],
    maker: Callable[[PlannedCase], InputCase],
    reference: Runner,
) -> list[InputCase]:
    """For each axis whose smallest swept size the source cannot run, a case at the smallest size it
    does run (found by bisection on the source alone, between that size and the next one it ran),
    unless the sweep has that size already. wav2vec2 and STFT front ends cannot run 1 sample."""
    extra: list[InputCase] = []
    for i, (axis, export) in enumerate(sorted(export_sizes.items())):
        cases = _axis_cases(results, axis)
        limits, ran = _cannot_run(cases), _ran(cases, export)
        if not limits or limits[0] > ran[0]:
            continue
        good = min(s for s in ran if s > limits[0])
        bad = max(s for s in limits if s < good)

        def make(size: int, axis: str = axis, seed: int = 900 + i) -> InputCase:
            return maker(PlannedCase(CaseKind.AXIS, f"{axis}={size}", seed, {**export_sizes, axis: size}, axis, size))

        def runs(size: int) -> bool:
            case = make(size)
            redraw = case.redraw
            for attempt in (0, REDRAWS - 1) if redraw is not None else (0,):
                try:
                    reference.run(case.feeds if attempt == 0 or redraw is None else redraw(attempt))
                    return True
                except Exception:
                    continue
            return False

        size = smallest_runnable(runs, bad, good)
        if size not in {c.size for c in cases} | {export}:
            extra.append(make(size))
    return extra


def _span(lo: int | None, hi: int | None) -> str:
    return f"{lo}..{'' if hi is None else hi}"


def judge_axes(
    results: Sequence[ParityCase], export_sizes: Mapping[str, int], bounds: Mapping[str, AxisBounds]
) -> tuple[AxisVerdict, ...]:
    """One verdict per dynamic axis. Where the exporter recorded a range narrower than declared, the
    first size past its bound decides: the source cannot run it (the model's own limit), the ONNX model
    matches there (the exporter was conservative), or it does not (the export narrowed the axis: exit 1)."""
    verdicts = []
    for axis, export in sorted(export_sizes.items()):
        b = bounds.get(axis) or AxisBounds(axis, export)
        cases = _axis_cases(results, axis)
        by_size = {c.size: c for c in cases}
        limits, ran = _cannot_run(cases), _ran(cases, export)
        smallest = ran[0] if limits and limits[0] < ran[0] else None
        outcome, notes = AxisOutcome.OK, []
        if smallest is not None:
            why = next(c.error or "" for c in cases if c.size == max(s for s in limits if s < smallest))
            notes.append(
                f"the source itself cannot run {axis} below {smallest} ({why.split(': ', 1)[-1]}); "
                f"{axis} from {smallest} was checked"
            )
        for probe, bound in b.probes.items():
            case = by_size.get(probe)
            if case is None:
                continue
            found, note = _judge_probe(axis, probe, bound, case, b, smallest)
            if found is AxisOutcome.EXPORT_NARROWED or outcome is AxisOutcome.OK:
                outcome = found
            notes.append(note)
        if outcome is AxisOutcome.EXPORT_NARROWED:
            notes = [n for n in notes if n.startswith("the exported model")]
        verdicts.append(
            AxisVerdict(
                axis,
                export,
                (b.declared.lo, b.declared.hi),
                b.exported,
                smallest,
                outcome,
                b.guard,
                "; ".join(notes) or None,
            )
        )
    return tuple(verdicts)


def _judge_probe(
    axis: str, probe: int, bound: int, case: ParityCase, b: AxisBounds, smallest: int | None
) -> tuple[AxisOutcome, str]:
    above = probe > bound
    recorded = f"{axis} {'<=' if above else '>='} {bound}"
    if case.kind is CaseKind.SOURCE_LIMIT:
        return AxisOutcome.SOURCE_LIMIT, (
            f"the exporter recorded {recorded}, and the source itself cannot run "
            f"{axis}={probe}: that is the model's own limit"
        )
    if case.passed:
        return AxisOutcome.CONSERVATIVE, (
            f"the exporter recorded {recorded}, but {axis}={probe} runs and matches "
            "the source: the declared range is kept"
        )
    declared = b.declared
    lo = bound if not above else max(declared.lo, smallest or declared.lo)
    hi = bound if above else declared.hi
    valid = SizeRange(lo, hi)
    how = "fails" if case.error else "differs from the source"
    guard = f" (guard: {b.guard})" if b.guard else ""
    return AxisOutcome.EXPORT_NARROWED, (
        f"the exported model is valid only for {axis}={valid}{guard}, not on the declared {axis}={declared}: "
        f"at {axis}={probe} it {how}; declare {axis}={valid} in --input to accept that range, or change the "
        "model so that it does not branch on that size"
    )


def axis_breaks(
    cases: Sequence[ParityCase], export_sizes: Mapping[str, int], axes: Sequence[AxisVerdict] = ()
) -> tuple[dict[str, tuple[int, ...]], list[str]]:
    """Each dynamic axis whose sweep broke while the export sizes passed, with the sizes that broke it,
    and the notes that explain the cases not judged.

    A case the *source* cannot run says nothing about the export: it is listed, not judged. An axis
    the exporter narrowed is explained by its verdict, not by a guess.
    """
    notes: list[str] = []
    seeded = [c for c in cases if c.kind is CaseKind.SEED]
    export_ok = bool(seeded) and all(c.passed for c in seeded)
    narrowed = {a.axis for a in axes if a.outcome is AxisOutcome.EXPORT_NARROWED}
    broken: dict[str, list[int]] = {}
    together_broke = False
    for c in cases:
        if c.kind is CaseKind.SOURCE_LIMIT:
            notes.append(f"case {c.label}: {c.error}; listed, not compared")
            continue
        if c.passed or c.kind not in (CaseKind.AXIS, CaseKind.ALL_AXES):
            continue
        if c.failed_side is Side.REFERENCE:
            notes.append(f"case {c.label}: the reference itself fails ({c.error}); this size is not checked")
        elif c.kind is CaseKind.ALL_AXES:
            together_broke = True
        elif c.axis is not None and c.size is not None:
            broken.setdefault(c.axis, []).append(c.size)
    if not export_ok:
        return {}, notes
    if together_broke and not broken:  # one axis breaking alone explains the joint case already
        notes.append(
            "every dynamic axis larger at once breaks, though each axis alone passes: "
            "the exporter may have tied two axes together"
        )
    for axis, sizes in broken.items():
        if axis in narrowed:
            continue
        notes.append(
            f"dynamic axis '{axis}' breaks at size(s) {sorted(sizes)} (exported at {export_sizes.get(axis, '?')}, "
            "passes there): the exporter specialised it; look for code that turns a shape into a Python int "
            "(int(x.shape[0]), x.size(0) in arithmetic), shapes baked into reshapes, or an `if` on a size"
        )
    return {a: tuple(sorted(s)) for a, s in broken.items()}, notes
