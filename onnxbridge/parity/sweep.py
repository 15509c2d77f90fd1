"""The parity check: run each case on both sides, compare every output, and read the sweep.

Cases come typed (:mod:`.cases`): seeded cases at the export sizes, one dynamic axis at another
size, all axes larger, fixtures, or the converter's example. A failing case knows which side
failed; nothing here parses a label or an error message.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np

from .._util import first_line
from ..errors import OnnxBridgeError, UsageError
from ..options import ParityPlan, Tolerances
from ..results import ERROR_BIN_EDGES, CaseKind, ParityCase, ParityReport, Side
from ..runtime.sessions import OrtRunner, Runner
from .cases import InputCase, PlannedCase, generated_cases, plan_cases
from .metrics import DEFAULT_TOLERANCES, compare_outputs

__all__ = ["ParityPlan", "plan_cases", "check_parity", "check_generated", "run_case", "compute_dtype"]


def run_case(
    case: PlannedCase,
    feeds: dict[str, np.ndarray],
    reference: Runner,
    candidate: Runner,
    tolerances: Tolerances = Tolerances(),
    compute_dtype: str | None = None,
) -> ParityCase:
    """Run both sides on ``feeds`` and compare every output."""
    shapes = {k: tuple(int(d) for d in np.shape(v)) for k, v in feeds.items()}

    def failed(side: Side, error: str) -> ParityCase:
        return ParityCase(case.label, case.seed, shapes, (), False, error, case.kind, case.axis, case.size, side)

    try:
        refs = reference.run(feeds)
    except OnnxBridgeError:
        raise
    except Exception as e:
        return failed(Side.REFERENCE, f"reference {reference.name} failed: {first_line(e, 400)}")
    try:
        gots = candidate.run(feeds)
    except OnnxBridgeError:
        raise
    except Exception as e:
        return failed(Side.CANDIDATE, f"{candidate.name} failed: {first_line(e, 400)}")
    names = candidate.output_names
    if len(refs) != len(gots):
        return failed(Side.COMPARISON, f"output count differs: reference gives {len(refs)}, "
                                       f"ONNX model gives {len(gots)} ({', '.join(names)})")
    outputs = compare_outputs(names, refs, gots, tolerances, compute_dtype=compute_dtype)
    return ParityCase(case.label, case.seed, shapes, tuple(outputs), all(o.passed for o in outputs),
                      kind=case.kind, axis=case.axis, size=case.size)


def check_parity(
    reference: Runner,
    candidate: OrtRunner,
    cases: Sequence[InputCase],
    *,
    tolerances: Tolerances = Tolerances(),
    compute_dtype: str | None = None,
) -> ParityReport:
    """Run every case on both sides and collect a ``ParityReport``.

    ``tolerances`` (``--tol``) must name outputs of the candidate. When the cases at the export
    sizes pass but a sweep case fails, ``broken_axes`` names each dynamic axis and the sizes that
    broke it. The candidate's node placement is attached when it was profiled.
    """
    unknown = sorted(set(tolerances.names) - set(candidate.output_names))
    if unknown:
        raise UsageError(
            f"--tol names no output of the model: {', '.join(unknown)}",
            f"the outputs are: {', '.join(candidate.output_names)}",
        )
    t0 = time.perf_counter()
    results = [run_case(c.case, c.feeds, reference, candidate, tolerances, compute_dtype) for c in cases]
    broken, notes = _axis_breaks(results, _export_sizes(cases))
    if candidate.provider.note:
        notes.append(candidate.provider.note)
    return ParityReport(
        reference=reference.name,
        provider_requested=candidate.provider.requested,
        provider_used=candidate.provider.used,
        providers=candidate.provider.session_providers,
        passed=bool(results) and all(c.passed for c in results),
        cases=tuple(results),
        tolerances=_tolerances_used(results),
        dynamic_axes=_sizes_tried(cases),
        seconds=time.perf_counter() - t0,
        notes=tuple(notes),
        placement=getattr(candidate, "placement", None),
        broken_axes=broken,
        histogram_edges=ERROR_BIN_EDGES,
    )


def check_generated(reference: Runner, candidate: OrtRunner, specs, axis_sizes: Mapping[str, int],
                    plan: ParityPlan = ParityPlan(), *, int_high=None, tolerances: Tolerances = Tolerances(),
                    compute_dtype: str | None = None) -> ParityReport:
    """:func:`check_parity` over generated inputs: the plan's seeds, then the sweep."""
    cases = generated_cases(specs, axis_sizes, plan, int_high=int_high)
    return check_parity(reference, candidate, cases, tolerances=tolerances, compute_dtype=compute_dtype)


def _export_sizes(cases: Sequence[InputCase]) -> dict[str, int]:
    """The size of each named axis in the cases at the export sizes."""
    return next((dict(c.case.sizes) for c in cases if c.case.kind is CaseKind.SEED), {})


def _sizes_tried(cases: Sequence[InputCase]) -> dict[str, tuple[int, ...]]:
    """Every size each dynamic axis was run at (generated cases only)."""
    tried: dict[str, set[int]] = {}
    for c in cases:
        for axis, size in c.case.sizes.items():
            tried.setdefault(axis, set()).add(size)
    return {a: tuple(sorted(s)) for a, s in tried.items()}


def _axis_breaks(cases: list[ParityCase], export_sizes: Mapping[str, int]) -> tuple[dict, list[str]]:
    """Each dynamic axis whose sweep broke while the export sizes passed, with the sizes that broke it.

    A sweep case where the *reference* itself fails says nothing about the export: it gets a note
    of its own and does not count as a break.
    """
    notes: list[str] = []
    seeded = [c for c in cases if c.kind is CaseKind.SEED]
    export_ok = bool(seeded) and all(c.passed for c in seeded)
    broken: dict[str, list[int]] = {}
    for c in cases:
        if c.passed or c.kind not in (CaseKind.AXIS, CaseKind.ALL_AXES):
            continue
        if c.failed_side is Side.REFERENCE:
            notes.append(f"case {c.label}: the reference itself fails ({c.error}); this size is not checked")
        elif c.kind is CaseKind.ALL_AXES:
            if export_ok:
                notes.append(
                    "every dynamic axis larger at once breaks, though each axis alone passes: "
                    "the exporter may have tied two axes together"
                )
        elif c.axis is not None and c.size is not None:
            broken.setdefault(c.axis, []).append(c.size)
    if not export_ok:
        return {}, notes
    for axis, sizes in broken.items():
        notes.append(
            f"dynamic axis '{axis}' breaks at size(s) {sorted(sizes)} (exported at {export_sizes.get(axis, '?')}, "
            "passes there): the exporter specialised it to the export size; look for code that turns a shape "
            "into a Python int (int(x.shape[0]), x.size(0) in arithmetic) or for shapes baked into reshapes"
        )
    return {a: tuple(sorted(s)) for a, s in broken.items()}, notes


def _tolerances_used(cases: list[ParityCase]) -> dict[str, dict[str, float]]:
    used: dict[str, dict[str, float]] = {}
    for c in cases:
        for o in c.outputs:
            used.setdefault(
                o.name, {"atol": o.atol, "rtol": o.rtol, "dtype": o.dtype, "from": o.tolerance_from}
            )
    if not used:
        used = {k: {"atol": v.atol, "rtol": v.rtol} for k, v in DEFAULT_TOLERANCES.items()}
    return used


def compute_dtype(model) -> str | None:
    """The narrowest float type a model computes in (float16 / bfloat16 weights or casts), else None.

    A model with float32 inputs and outputs that casts to float16 inside cannot meet float32
    tolerances; the parity check judges it at the narrower type's defaults.
    """
    import onnx

    narrow = {onnx.TensorProto.FLOAT16: "float16", onnx.TensorProto.BFLOAT16: "bfloat16"}
    found = {narrow[i.data_type] for i in model.graph.initializer if i.data_type in narrow}
    for node in model.graph.node:
        if node.op_type == "Cast":
            to = next((a.i for a in node.attribute if a.name == "to"), None)
            if to in narrow:
                found.add(narrow[to])
    if "bfloat16" in found:
        return "bfloat16"
    return "float16" if found else None
