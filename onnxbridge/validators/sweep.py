"""The parity check: seeded cases at the export sizes, then a sweep over every dynamic axis."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import OnnxBridgeError
from ..results import ParityCase, ParityReport
from ..specs import TensorSpec
from .inputs import generate_inputs
from .parity import DEFAULT_TOLERANCES, Tolerance, compare_outputs
from .runners import OrtRunner, Runner

__all__ = ["ParityPlan", "plan_cases", "check_parity", "run_case"]


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
) -> ParityCase:
    """Run both sides on ``feeds`` and compare every output."""
    shapes = {k: tuple(int(d) for d in np.shape(v)) for k, v in feeds.items()}
    try:
        refs = reference.run(feeds)
    except OnnxBridgeError:
        raise
    except Exception as e:
        return ParityCase(label, seed, shapes, (), False, f"reference {reference.name} failed: {_line(e)}")
    try:
        gots = candidate.run(feeds)
    except OnnxBridgeError:
        raise
    except Exception as e:
        return ParityCase(label, seed, shapes, (), False, f"{candidate.name} failed: {_line(e)}")
    names = candidate.output_names
    if len(refs) != len(gots):
        return ParityCase(
            label, seed, shapes, (), False,
            f"output count differs: reference gives {len(refs)}, ONNX model gives {len(gots)} ({', '.join(names)})",
        )
    outputs = compare_outputs(names, refs, gots, tolerances, atol=atol, rtol=rtol)
    return ParityCase(label, seed, shapes, tuple(outputs), all(o.passed for o in outputs))


def check_parity(
    reference: Runner,
    candidate: OrtRunner,
    specs: Sequence[TensorSpec],
    axis_sizes: Mapping[str, int],
    *,
    plan: ParityPlan = ParityPlan(),
    int_high: int | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    tolerances: Mapping[str, Tolerance] | None = None,
    feeds: Sequence[tuple[str, dict[str, np.ndarray]]] | None = None,
) -> ParityReport:
    """Run every planned case (or the given ``feeds``) on both sides and collect a ``ParityReport``."""
    t0 = time.perf_counter()
    results: list[ParityCase] = []
    if feeds is not None:
        for label, f in feeds:
            results.append(run_case(label, None, f, reference, candidate, tolerances, atol, rtol))
    else:
        for pc in plan_cases(axis_sizes, plan):
            f = generate_inputs(specs, pc.sizes, pc.seed, int_high=int_high)
            results.append(run_case(pc.label, pc.seed, f, reference, candidate, tolerances, atol, rtol))
    notes = list(_axis_notes(results, axis_sizes))
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
    )


def _axis_notes(cases: list[ParityCase], axis_sizes: Mapping[str, int]):
    """Name each dynamic axis whose sweep broke, with the sizes that broke it."""
    broken: dict[str, list[int]] = {}
    for c in cases:
        if c.passed or "=" not in c.label or c.label.startswith("seed="):
            continue
        axis, _, size = c.label.partition("=")
        if axis in axis_sizes and size.isdigit():
            broken.setdefault(axis, []).append(int(size))
    for axis, sizes in broken.items():
        yield (
            f"dynamic axis '{axis}' breaks at size(s) {sorted(sizes)} (exported at {axis_sizes[axis]}): "
            "the exporter may have specialised it; check the model for shape-dependent code"
        )


def _tolerances_used(cases: list[ParityCase]) -> dict[str, dict[str, float]]:
    used: dict[str, dict[str, float]] = {}
    for c in cases:
        for o in c.outputs:
            used.setdefault(o.name, {"atol": o.atol, "rtol": o.rtol, "dtype": o.dtype})
    if not used:
        used = {k: {"atol": v.atol, "rtol": v.rtol} for k, v in DEFAULT_TOLERANCES.items()}
    return used


def _line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:400] if text else ''}"
