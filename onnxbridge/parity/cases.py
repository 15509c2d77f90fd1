"""Parity cases: what each case is (typed), the cases a plan asks for, and the inputs they run on."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from ..options import ParityPlan
from ..results import CaseKind
from ..specs import SizeRange

if TYPE_CHECKING:
    from ..specs import TensorSpec

__all__ = [
    "PlannedCase",
    "InputCase",
    "AxisBounds",
    "plan_cases",
    "axis_sizes_to_try",
    "larger_size",
    "far_size",
    "smallest_runnable",
    "generated_cases",
    "fixture_cases",
    "example_case",
]


def larger_size(size: int) -> int:
    """The sweep's larger size for an axis exported at ``size`` (odd steps show divisibility guards)."""
    return size + 3


def far_size(size: int) -> int:
    """A size well beyond the export size: 4x + 3 (a branch on ``x.shape[1] > 24`` exported at 8 shows at
    35), 2x + 3 from 32 on (a 224-pixel image is checked at 451, not 899)."""
    return (4 if size < 32 else 2) * size + 3


@dataclass(frozen=True)
class AxisBounds:
    """What is known of one dynamic axis before the sweep: its export size, the range the user
    declared (``seq=1..24``), the range the exporter recorded for it (``exported``, None when unknown:
    the TorchScript route, an ONNX file without onnxbridge's metadata) and the guard that bounds it."""

    axis: str
    export: int
    declared: SizeRange = SizeRange()
    exported: tuple[int, int | None] | None = None
    guard: str | None = None

    @property
    def narrower_above(self) -> bool:
        """The exporter's upper bound is below the declared one."""
        hi = self.exported[1] if self.exported else None
        return hi is not None and (self.declared.hi is None or hi < self.declared.hi)

    @property
    def narrower_below(self) -> bool:
        """The exporter's lower bound is above the declared one. torch.export starts every symbol at 2
        (it specialises 0 and 1), which says nothing about the model: size 1 is swept anyway."""
        return self.exported is not None and self.exported[0] > max(self.declared.lo, 2)

    @property
    def probes(self) -> dict[int, int]:
        """Size just outside the exported range -> the bound it probes (where the export may break)."""
        out: dict[int, int] = {}
        if self.exported is None:
            return out
        lo, hi = self.exported
        if self.narrower_above and hi is not None:
            out[hi + 1] = hi
        if self.narrower_below:
            out[lo - 1] = lo
        return out


def axis_sizes_to_try(bounds: AxisBounds) -> tuple[int, ...]:
    """The sizes the sweep runs one axis at: the lower bound of the declared range (1 by default), the
    export size + 3, a size well beyond the export size (:func:`far_size`), the declared upper bound, and, where the
    exporter recorded a narrower range, its bounds and the first size past each (the export size itself
    is what the seeded cases run)."""
    declared = bounds.declared
    sizes = {declared.lo, declared.clamp(larger_size(bounds.export)), declared.clamp(far_size(bounds.export))}
    if declared.hi is not None:
        sizes.add(declared.hi)
    for probe, bound in bounds.probes.items():
        sizes.update({probe, bound})
    return tuple(sorted(s for s in sizes if s != bounds.export and s in declared))


@dataclass(frozen=True)
class PlannedCase:
    """One case before it runs: its kind, label, seed and the size of every named axis."""

    kind: CaseKind
    label: str
    seed: int | None = None
    sizes: dict[str, int] = field(default_factory=dict)
    axis: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class InputCase:
    """A case with its inputs, ready to run on both sides. ``redraw(attempt)`` gives other inputs for a
    generated case the source could not run (None for fixed inputs)."""

    case: PlannedCase
    feeds: dict[str, Any]
    redraw: Callable[[int], dict[str, Any]] | None = field(default=None, compare=False, repr=False)


def plan_cases(
    axis_sizes: Mapping[str, int], plan: ParityPlan = ParityPlan(), bounds: Mapping[str, AxisBounds] | None = None
) -> list[PlannedCase]:
    """Every case to run: one per seed at the export sizes, then each axis at the sizes
    :func:`axis_sizes_to_try` gives, then every axis larger at once (when there are several)."""
    cases = [PlannedCase(CaseKind.SEED, f"seed={s}", s, dict(axis_sizes)) for s in plan.seeds]
    if not plan.sweep:
        return cases
    base_seed = (plan.seeds[-1] if plan.seeds else 0) + 100
    bounds = bounds or {}
    for i, (axis, size) in enumerate(sorted(axis_sizes.items())):
        for j, new in enumerate(axis_sizes_to_try(bounds.get(axis) or AxisBounds(axis, size))):
            cases.append(
                PlannedCase(
                    CaseKind.AXIS, f"{axis}={new}", base_seed + 10 * i + j, {**axis_sizes, axis: new}, axis, new
                )
            )
    if len(axis_sizes) > 1:
        larger = {
            a: (bounds[a].declared.clamp(larger_size(s)) if a in bounds else larger_size(s))
            for a, s in axis_sizes.items()
        }
        if larger != dict(axis_sizes):
            cases.append(PlannedCase(CaseKind.ALL_AXES, "all axes larger", base_seed + 99, larger))
    return cases


def smallest_runnable(runs: Callable[[int], bool], lo: int, hi: int) -> int:
    """The smallest size in ``(lo, hi]`` at which ``runs(size)`` holds, by bisection, given that it fails
    at ``lo`` and holds at ``hi`` (a size the source ran). About log2(hi - lo) calls; assumes that a
    source which runs at some size runs at every larger one (convolutions, STFT padding, pooling)."""
    bad, good = lo, hi
    while good - bad > 1:
        mid = (bad + good) // 2
        if runs(mid):
            good = mid
        else:
            bad = mid
    return good


def generated_cases(
    specs: Sequence[TensorSpec],
    axis_sizes: Mapping[str, int],
    plan: ParityPlan = ParityPlan(),
    *,
    int_high: Any = None,
    bounds: Mapping[str, AxisBounds] | None = None,
) -> list[InputCase]:
    """The planned cases with seeded generated inputs (see :func:`onnxbridge.parity.inputs.generate_inputs`)."""
    return [generated_case(pc, specs, int_high) for pc in plan_cases(axis_sizes, plan, bounds)]


def generated_case(pc: PlannedCase, specs: Sequence[TensorSpec], int_high: Any = None) -> InputCase:
    """One planned case with its generated inputs, and the redraws for it."""
    from .inputs import generate_inputs

    draw = partial(generate_inputs, tuple(specs), dict(pc.sizes), pc.seed or 0, int_high=int_high)
    return InputCase(pc, draw(), lambda attempt: draw(attempt=attempt))


def fixture_cases(cases: Sequence[tuple[str, dict[str, Any]]]) -> list[InputCase]:
    """Inputs read from a fixtures file, one case per label."""
    return [InputCase(PlannedCase(CaseKind.FIXTURE, label), feeds) for label, feeds in cases]


def example_case(feeds: Mapping[str, Any]) -> InputCase:
    """The converter's example inputs, at the export sizes."""
    return InputCase(PlannedCase(CaseKind.EXAMPLE, "example"), dict(feeds))
