"""The parity check: run each case on both sides, compare every output, and read the sweep.

Cases come typed (:mod:`.cases`): seeded cases at the export sizes, one dynamic axis at another
size, all axes larger, fixtures, or the converter's example. A failing case knows which side
failed; nothing here parses a label or an error message.

Before anything is compared the reference must repeat itself (one input run twice); a generated
input the source raises on is drawn again within the example's ranges, and a size the source
cannot run is listed as such (:attr:`CaseKind.SOURCE_LIMIT`), never judged.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from .._util import first_line
from ..errors import OnnxBridgeError, UsageError
from ..options import ParityPlan, Tolerances
from ..results import ERROR_BIN_EDGES, AxisOutcome, CaseKind, ParityCase, ParityReport, Side, ToleranceUsed
from ..runtime.capabilities import Placed, RandomOpsFinder
from ..runtime.sessions import OrtRunner, Runner
from .axes import axis_breaks, judge_axes, smallest_runnable_cases
from .cases import AxisBounds, InputCase, PlannedCase, plan_cases
from .inputs import REDRAWS, blame_inputs
from .masks import masked_pairs
from .metrics import DEFAULT_TOLERANCES, compare_outputs, default_tolerance
from .oracle import PrecisionOracle

if TYPE_CHECKING:
    import onnx

__all__ = [
    "ParityPlan",
    "plan_cases",
    "check_parity",
    "run_parity",
    "run_case",
    "compute_dtype",
    "output_compute_dtypes",
    "self_check",
]

CaseMaker = Callable[[PlannedCase], InputCase]


def run_case(
    case: PlannedCase,
    feeds: dict[str, np.ndarray],
    reference: Runner,
    candidate: Runner,
    tolerances: Tolerances = Tolerances(),
    compute_dtype: str | Mapping[str, str | None] | None = None,
    *,
    refs: list[np.ndarray] | None = None,
    oracle: PrecisionOracle | None = None,
) -> ParityCase:
    """Run both sides on ``feeds`` (the reference only when ``refs`` is not given) and compare every output:
    positions an attention / padding mask input leaves out are not compared (:mod:`.masks`), and a float32
    output that fails the tolerance is judged again against the source in float64 (``oracle``, :mod:`.oracle`)."""
    shapes = {k: tuple(int(d) for d in np.shape(v)) for k, v in feeds.items()}
    source_s = onnx_s = None

    def failed(side: Side, error: str) -> ParityCase:
        return ParityCase(
            case.label,
            case.seed,
            shapes,
            (),
            False,
            error,
            case.kind,
            case.axis,
            case.size,
            side,
            source_s=source_s,
            onnx_s=onnx_s,
        )

    if refs is None:
        t0 = time.perf_counter()
        try:
            refs = reference.run(feeds)
        except OnnxBridgeError:
            raise
        except Exception as e:
            source_s = time.perf_counter() - t0
            return failed(Side.REFERENCE, f"reference {reference.name} failed: {first_line(e, 400)}")
        source_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        gots = candidate.run(feeds)
    except OnnxBridgeError:
        raise
    except Exception as e:
        onnx_s = time.perf_counter() - t0
        return failed(Side.CANDIDATE, f"{candidate.name} failed: {first_line(e, 400)}")
    onnx_s = time.perf_counter() - t0
    names = candidate.output_names
    if len(refs) != len(gots):
        return failed(
            Side.COMPARISON,
            f"output count differs: reference gives {len(refs)}, ONNX model gives {len(gots)} ({', '.join(names)})",
        )
    kept_refs, kept_gots, positions = masked_pairs(refs, gots, feeds)
    outputs = compare_outputs(names, kept_refs, kept_gots, tolerances, compute_dtype=compute_dtype)
    outputs = [dataclasses.replace(o, masked_positions=p.count) if p.count else o for o, p in zip(outputs, positions)]
    if oracle is not None:
        narrow = frozenset(
            n for n in names if (compute_dtype.get(n) if isinstance(compute_dtype, Mapping) else compute_dtype)
        )
        outputs = oracle.judge(feeds, refs, gots, outputs, [p.keep for p in positions], narrow)
    return ParityCase(
        case.label,
        case.seed,
        shapes,
        tuple(outputs),
        all(o.passed for o in outputs),
        kind=case.kind,
        axis=case.axis,
        size=case.size,
        source_s=source_s,
        onnx_s=onnx_s,
    )


def check_parity(
    reference: Runner,
    candidate: OrtRunner,
    cases: Sequence[InputCase],
    *,
    tolerances: Tolerances = Tolerances(),
    compute_dtype: str | Mapping[str, str | None] | None = None,
    bounds: Mapping[str, AxisBounds] | None = None,
    maker: CaseMaker | None = None,
) -> ParityReport:
    """Run every case on both sides and collect a ``ParityReport`` (see :func:`run_parity`). The stages build
    their check with :func:`onnxbridge.parity.check.one_pass` instead, which derives ``compute_dtype``."""
    return run_parity(
        reference, candidate, cases, tolerances=tolerances, compute_dtype=compute_dtype, bounds=bounds, maker=maker
    )[0]


def run_parity(
    reference: Runner,
    candidate: OrtRunner,
    cases: Sequence[InputCase],
    *,
    tolerances: Tolerances = Tolerances(),
    compute_dtype: str | Mapping[str, str | None] | None = None,
    bounds: Mapping[str, AxisBounds] | None = None,
    maker: CaseMaker | None = None,
) -> tuple[ParityReport, list[InputCase]]:
    """Run every case on both sides: the report, and the cases with the inputs really used.

    ``tolerances`` (``--tol``) must name outputs of the candidate. The reference runs one input twice
    first: a source that does not repeat is named, not judged. A generated case the source raises on is
    drawn again (:data:`~onnxbridge.parity.inputs.REDRAWS` times); if the source never runs it, the case is
    listed as :attr:`CaseKind.SOURCE_LIMIT` and, given ``maker``, the smallest size the source runs is found
    and checked instead. At the export sizes that is a usage error naming the input (exit 2). ``bounds``
    (declared and exported ranges per axis) let the sweep name an axis the export narrowed. The report
    passes only when at least one case was compared and every compared case passed.
    """
    unknown = sorted(set(tolerances.names) - set(candidate.output_names))
    if unknown:
        raise UsageError(
            f"--tol names no output of the model: {', '.join(unknown)}",
            f"the outputs are: {', '.join(candidate.output_names)}",
        )
    t0 = time.perf_counter()
    oracle = PrecisionOracle(reference, tolerances.oracle_multiple)
    compare = partial(
        run_case,
        reference=reference,
        candidate=candidate,
        tolerances=tolerances,
        compute_dtype=compute_dtype,
        oracle=oracle,
    )
    results, used, notes, repeat = _run_cases(cases, reference, compare)
    export_sizes = _export_sizes(cases)
    if maker is not None:
        for inputs in smallest_runnable_cases(results, export_sizes, maker, reference):
            results.append(compare(case=inputs.case, feeds=inputs.feeds))
            used.append(inputs)
    axes = judge_axes(results, export_sizes, bounds or {})
    broken, axis_notes = axis_breaks(results, export_sizes, axes)
    notes = axis_notes + notes + [a.note for a in axes if a.note and a.outcome is not AxisOutcome.EXPORT_NARROWED]
    if candidate.provider.note:
        notes.append(candidate.provider.note)
    judged = [c for c in results if c.kind is not CaseKind.SOURCE_LIMIT]
    repeats, nondeterminism = repeat
    passed = (
        bool(judged)
        and all(c.passed for c in judged)
        and repeats is not False
        and not any(a.outcome is AxisOutcome.EXPORT_NARROWED for a in axes)
    )
    said = oracle.summary()
    if said.consulted or (not passed and not said.available and said.multiple > 0):
        notes.append(said.line())
    report = ParityReport(
        reference=reference.name,
        provider_requested=candidate.provider.requested,
        provider_used=candidate.provider.used,
        providers=candidate.provider.session_providers,
        passed=passed,
        cases=tuple(results),
        tolerances=_tolerances_used(results),
        dynamic_axes=_sizes_tried(used, results),
        seconds=time.perf_counter() - t0,
        notes=tuple(dict.fromkeys(notes)),
        placement=candidate.placement if isinstance(candidate, Placed) else None,
        broken_axes=broken,
        histogram_edges=ERROR_BIN_EDGES,
        axes=axes,
        source_repeats=repeats,
        nondeterminism=nondeterminism,
        oracle=said,
    )
    return report, used


def _run_cases(
    cases: Sequence[InputCase], reference: Runner, compare: Callable[..., ParityCase]
) -> tuple[list[ParityCase], list[InputCase], list[str], tuple[bool | None, str | None]]:
    """(results, inputs used, notes, (source repeats, why not)) over the planned cases; the self-check
    runs on the first case the source runs."""
    results: list[ParityCase] = []
    used: list[InputCase] = []
    notes: list[str] = []
    repeat: tuple[bool | None, str | None] = (None, None)
    for c in cases:
        t0 = time.perf_counter()
        case, inputs, refs, note = _settle(c, reference)
        source_s = time.perf_counter() - t0  # every draw the source ran
        if note:
            notes.append(note)
        if repeat[0] is None and refs is not None:
            repeat = self_check(reference, inputs.feeds, refs)
        case = case if case is not None else compare(case=inputs.case, feeds=inputs.feeds, refs=refs)
        results.append(dataclasses.replace(case, source_s=source_s))
        used.append(inputs)
    return results, used, notes, repeat


_GENERATED = (CaseKind.SEED, CaseKind.AXIS, CaseKind.ALL_AXES)


def _settle(
    c: InputCase, reference: Runner
) -> tuple[ParityCase | None, InputCase, list[np.ndarray] | None, str | None]:
    """Run the reference on a case, drawing its inputs again while the source raises on them.

    Returns (the case when it ends here, without comparison: the source could not run it; the inputs
    used; the reference's outputs; a note)."""
    errors: list[str] = []
    inputs, redraw = c, c.redraw
    attempts = REDRAWS if redraw is not None else 1
    for attempt in range(attempts):
        if attempt and redraw is not None:
            inputs = InputCase(c.case, redraw(attempt), redraw)
        try:
            refs = reference.run(inputs.feeds)
        except OnnxBridgeError:
            raise
        except Exception as e:
            errors.append(first_line(e, 400))
            continue
        note = (
            (
                f"case {c.case.label}: the source raised on {attempt} draw(s) of generated inputs "
                f"({errors[0]}); checked on a new draw within the example's ranges"
            )
            if attempt
            else None
        )
        return None, inputs, refs, note
    shapes = {k: tuple(int(d) for d in np.shape(v)) for k, v in c.feeds.items()}
    pc = c.case
    if pc.kind not in _GENERATED:  # the user's own inputs: a failure of the case, said as such
        return (
            ParityCase(
                pc.label,
                pc.seed,
                shapes,
                (),
                False,
                f"reference {reference.name} failed: {errors[-1]}",
                pc.kind,
                pc.axis,
                pc.size,
                Side.REFERENCE,
            ),
            c,
            None,
            None,
        )
    if pc.kind is CaseKind.SEED:
        raise _cannot_run(c, reference, errors[-1])
    cannot = f"the source cannot run this input ({attempts} draw{'s' if attempts > 1 else ''}): {errors[-1]}"
    return (
        ParityCase(
            pc.label, pc.seed, shapes, (), False, cannot, CaseKind.SOURCE_LIMIT, pc.axis, pc.size, Side.REFERENCE
        ),
        c,
        None,
        None,
    )


def _cannot_run(c: InputCase, reference: Runner, error: str) -> UsageError:
    """Exit 2 when the source raises on every draw at the export sizes, naming the input to blame (see
    :func:`~onnxbridge.parity.inputs.blame_inputs`)."""
    blamed = blame_inputs(reference.run, c.feeds)
    what = (
        f"input {', '.join(repr(b) for b in blamed)}: with it set to ones the source runs"
        if blamed
        else f"inputs {', '.join(repr(n) for n in c.feeds)}"
    )
    return UsageError(
        f"the source cannot run any generated input (tried {REDRAWS} draws at the export sizes; {what}): {error}",
        "give example inputs that show the values the model takes (the generator keeps their range), "
        "or real data with --inputs FILE.npz",
    )


def self_check(reference: Runner, feeds: dict[str, np.ndarray], first: Sequence[np.ndarray]) -> tuple[bool, str | None]:
    """Run the reference again on ``feeds``: (True, None) when it repeats ``first`` within 1% of each
    output's default tolerance, else (False, a message naming the output and, where the runner can
    tell, the random ops)."""
    try:
        second = reference.run(feeds)  # the same object: a recorded reference answers by identity
    except Exception as e:  # a source that runs once and not twice does not repeat either
        return False, f"the source does not repeat: a second run on the same input raised {first_line(e)}"
    names = list(reference.output_names)
    worst, worst_name = 0.0, None
    for i, (a, b) in enumerate(zip(first, second)):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            worst, worst_name = float("inf"), names[i] if i < len(names) else str(i)
            break
        if a.size == 0:
            continue
        tol = default_tolerance(a.dtype)
        x, y = a.astype(np.float64), b.astype(np.float64)
        same = (x == y) | (np.isnan(x) & np.isnan(y))
        excess = np.where(same, 0.0, np.abs(x - y) - 0.01 * (tol.atol + tol.rtol * np.abs(x)))
        if float(np.nanmax(np.where(np.isnan(excess), np.inf, excess))) > 0:
            diff = float(np.nanmax(np.where(same, 0.0, np.abs(x - y))))
            if diff > worst or worst_name is None:
                worst, worst_name = diff, names[i] if i < len(names) else str(i)
    if worst_name is None:
        return True, None
    message = f"the source does not repeat: two runs on the same input differ by {worst:.3g} on output '{worst_name}'"
    ops = reference.random_ops(dict(feeds)) if isinstance(reference, RandomOpsFinder) else []
    if ops:
        message += "; random op(s): " + "; ".join(ops[:4])
    return (
        False,
        message + " (a parity check needs a deterministic source: put it in eval mode, seed or remove the random ops)",
    )


def _export_sizes(cases: Sequence[InputCase]) -> dict[str, int]:
    """The size of each named axis in the cases at the export sizes."""
    return next((dict(c.case.sizes) for c in cases if c.case.kind is CaseKind.SEED), {})


def _sizes_tried(used: Sequence[InputCase], results: Sequence[ParityCase]) -> dict[str, tuple[int, ...]]:
    """Every size each dynamic axis was compared at (not the sizes the source could not run)."""
    tried: dict[str, set[int]] = {}
    for c, r in zip(used, results):
        if r.kind is CaseKind.SOURCE_LIMIT:
            continue
        for axis, size in c.case.sizes.items():
            tried.setdefault(axis, set()).add(size)
    return {a: tuple(sorted(s)) for a, s in tried.items()}


def _tolerances_used(cases: list[ParityCase]) -> dict[str, ToleranceUsed]:
    used: dict[str, ToleranceUsed] = {}
    for c in cases:
        for o in c.outputs:
            used.setdefault(o.name, ToleranceUsed(o.atol, o.rtol, o.dtype, o.tolerance_from))
    if not used:
        used = {k: ToleranceUsed(v.atol, v.rtol if v.rtol is not None else 0.0) for k, v in DEFAULT_TOLERANCES.items()}
    return used


def compute_dtype(model: onnx.ModelProto) -> str | None:
    """The narrowest float type a model computes in (float16 / bfloat16 weights or casts), else None.

    A model with float32 inputs and outputs that casts to float16 inside cannot meet float32
    tolerances; :func:`output_compute_dtypes` says which outputs that reaches.
    """
    found = {d for d in output_compute_dtypes(model).values() if d}
    if "bfloat16" in found:
        return "bfloat16"
    return "float16" if found else None


def output_compute_dtypes(model: onnx.ModelProto) -> dict[str, str | None]:
    """Graph output -> the narrowest float type among the values it depends on (float16 / bfloat16
    initializers, casts to them, graph inputs of them), or None when it depends on none: only outputs
    that depend on narrow values are judged at the narrow type's tolerances."""
    from .narrow import narrow_dependencies

    return narrow_dependencies(model)
