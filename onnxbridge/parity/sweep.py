"""The parity check: seeded cases at the export sizes, then a sweep over every dynamic axis."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._util import first_line
from ..errors import OnnxBridgeError, UsageError
from ..results import ParityCase, ParityReport
from ..specs import TensorSpec
from .inputs import generate_inputs
from .metrics import DEFAULT_TOLERANCES, ERROR_BIN_EDGES, Tolerance, compare_outputs
from ..runtime.sessions import OrtRunner, Runner

__all__ = ["ParityPlan", "plan_cases", "check_parity", "run_case", "compute_dtype"]


@dataclass(frozen=True)
class PlannedCase:
    label: str
    seed: int
    sizes: dict[str, int]
    axis: str | None = None


@dataclass(frozen=True)
class ParityPlan:
    """Inputs to check: seeds at export sizes, plus sizes to sweep per dynamic axis."""

    seeds: tuple[int, ...] = (0, 1, 2)
    sweep: bool = True


def _larger(size: int) -> int:
    return size + 3


def plan_cases(axis_sizes: Mapping[str, int], plan: ParityPlan = ParityPlan()) -> list[PlannedCase]:
    """Every case to run: one per seed at the export sizes, then size 1 and a larger size per axis."""
    cases = [PlannedCase(f"seed={s}", s, dict(axis_sizes)) for s in plan.seeds]
    if not plan.sweep:
        return cases
    base_seed = (plan.seeds[-1] if plan.seeds else 0) + 100
    for i, (axis, size) in enumerate(sorted(axis_sizes.items())):
        for j, new in enumerate(sorted({1, _larger(size)} - {size})):
            sizes = dict(axis_sizes)
            sizes[axis] = new
            cases.append(PlannedCase(f"{axis}={new}", base_seed + 10 * i + j, sizes, axis))
    if len(axis_sizes) > 1:
        cases.append(
            PlannedCase(
                "all axes larger", base_seed + 99, {a: _larger(s) for a, s in axis_sizes.items()}, "*"
            )
        )
    return cases


def run_case(
    label: str,
    seed: int | None,
    feeds: dict[str, np.ndarray],
    reference: Runner,
    candidate: Runner,
    tolerances: Mapping[str, Tolerance] | None,
    atol: float | None,
    rtol: float | None,
    compute_dtype: str | None = None,
) -> ParityCase:
    """Run both sides on ``feeds`` and compare every output."""
    shapes = {k: tuple(int(d) for d in np.shape(v)) for k, v in feeds.items()}
    try:
        refs = reference.run(feeds)
    except OnnxBridgeError:
        raise
    except Exception as e:
        return ParityCase(label, seed, shapes, (), False, f"reference {reference.name} failed: {first_line(e, 400)}")
    try:
        gots = candidate.run(feeds)
    except OnnxBridgeError:
        raise
    except Exception as e:
        return ParityCase(label, seed, shapes, (), False, f"{candidate.name} failed: {first_line(e, 400)}")
    names = candidate.output_names
    if len(refs) != len(gots):
        return ParityCase(
            label, seed, shapes, (), False,
            f"output count differs: reference gives {len(refs)}, ONNX model gives {len(gots)} ({', '.join(names)})",
        )
    outputs = compare_outputs(names, refs, gots, tolerances, atol=atol, rtol=rtol, compute_dtype=compute_dtype)
    return ParityCase(label, seed, shapes, tuple(outputs), all(o.passed for o in outputs))


def check_parity(
    reference: Runner,
    candidate: OrtRunner,
    specs: Sequence[TensorSpec],
    axis_sizes: Mapping[str, int],
    *,
    plan: ParityPlan = ParityPlan(),
    int_high: int | Mapping[str, int] | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    tolerances: Mapping[str, Tolerance] | None = None,
    feeds: Sequence[tuple[str, dict[str, np.ndarray]]] | None = None,
    compute_dtype: str | None = None,
) -> ParityReport:
    """Run every planned case (or the given ``feeds``) on both sides and collect a ``ParityReport``.

    ``tolerances`` (``--tol``) must name outputs of the candidate. When the cases at the export
    sizes pass but a sweep case fails, ``broken_axes`` names each dynamic axis and the sizes that
    broke it. The candidate's node placement is attached when it was profiled.
    """
    unknown = sorted(set(tolerances or {}) - set(candidate.output_names))
    if unknown:
        raise UsageError(
            f"--tol names no output of the model: {', '.join(unknown)}",
            f"the outputs are: {', '.join(candidate.output_names)}",
        )
    t0 = time.perf_counter()
    results: list[ParityCase] = []
    args = (reference, candidate, tolerances, atol, rtol, compute_dtype)
    if feeds is not None:
        for label, f in feeds:
            results.append(run_case(label, None, f, *args))
    else:
        for pc in plan_cases(axis_sizes, plan):
            f = generate_inputs(specs, pc.sizes, pc.seed, int_high=int_high)
            results.append(run_case(pc.label, pc.seed, f, *args))
    broken, notes = _axis_breaks(results, axis_sizes) if feeds is None else ({}, [])
    if candidate.provider.note:
        notes.append(candidate.provider.note)
    used_tols = _tolerances_used(results)
    return ParityReport(
        reference=reference.name,
        provider_requested=candidate.provider.requested,
        provider_used=candidate.provider.used,
        providers=candidate.provider.session_providers,
        passed=bool(results) and all(c.passed for c in results),
        cases=tuple(results),
        tolerances=used_tols,
        dynamic_axes={a: tuple(sorted({s, 1, _larger(s)})) for a, s in axis_sizes.items()} if feeds is None else {},
        seconds=time.perf_counter() - t0,
        notes=tuple(notes),
        placement=getattr(candidate, "placement", None),
        broken_axes=broken,
        histogram_edges=ERROR_BIN_EDGES,
    )


def _axis_breaks(cases: list[ParityCase], axis_sizes: Mapping[str, int]) -> tuple[dict, list[str]]:
    """Each dynamic axis whose sweep broke while the export sizes passed, with the sizes that broke it.

    A sweep case where the *reference* itself fails says nothing about the export: it gets a note
    of its own and does not count as a break.
    """
    notes: list[str] = []
    export_ok = any(c.label.startswith("seed=") for c in cases) and all(
        c.passed for c in cases if c.label.startswith("seed=")
    )
    broken: dict[str, list[int]] = {}
    for c in cases:
        if c.passed or c.label.startswith("seed="):
            continue
        if c.error and c.error.startswith("reference "):
            notes.append(f"case {c.label}: the reference itself fails ({c.error}); this size is not checked")
            continue
        if c.label == "all axes larger":
            if export_ok:
                notes.append(
                    "every dynamic axis larger at once breaks, though each axis alone passes: "
                    "the exporter may have tied two axes together"
                )
            continue
        axis, _, size = c.label.partition("=")
        if axis in axis_sizes and size.isdigit():
            broken.setdefault(axis, []).append(int(size))
    if not export_ok:
        return {}, notes
    for axis, sizes in broken.items():
        notes.append(
            f"dynamic axis '{axis}' breaks at size(s) {sorted(sizes)} (exported at {axis_sizes[axis]}, passes there): "
            "the exporter specialised it to the export size; look for code that turns a shape into a "
            "Python int (int(x.shape[0]), x.size(0) in arithmetic) or for shapes baked into reshapes"
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
