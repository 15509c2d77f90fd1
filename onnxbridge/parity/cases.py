"""Parity cases: what each case is (typed), the cases a plan asks for, and the inputs they run on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..options import ParityPlan
from ..results import CaseKind

if TYPE_CHECKING:
    from ..specs import TensorSpec

__all__ = ["PlannedCase", "InputCase", "plan_cases", "larger_size", "generated_cases", "fixture_cases",
           "example_case"]


def larger_size(size: int) -> int:
    """The sweep's larger size for an axis exported at ``size``."""
    return size + 3


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
    """A case with its inputs, ready to run on both sides."""

    case: PlannedCase
    feeds: dict[str, Any]


def plan_cases(axis_sizes: Mapping[str, int], plan: ParityPlan = ParityPlan()) -> list[PlannedCase]:
    """Every case to run: one per seed at the export sizes, then size 1 and a larger size per axis,
    then every axis larger at once (when there are several)."""
    cases = [PlannedCase(CaseKind.SEED, f"seed={s}", s, dict(axis_sizes)) for s in plan.seeds]
    if not plan.sweep:
        return cases
    base_seed = (plan.seeds[-1] if plan.seeds else 0) + 100
    for i, (axis, size) in enumerate(sorted(axis_sizes.items())):
        for j, new in enumerate(sorted({1, larger_size(size)} - {size})):
            cases.append(PlannedCase(CaseKind.AXIS, f"{axis}={new}", base_seed + 10 * i + j,
                                     {**axis_sizes, axis: new}, axis, new))
    if len(axis_sizes) > 1:
        cases.append(PlannedCase(CaseKind.ALL_AXES, "all axes larger", base_seed + 99,
                                 {a: larger_size(s) for a, s in axis_sizes.items()}))
    return cases


def generated_cases(specs: Sequence[TensorSpec], axis_sizes: Mapping[str, int], plan: ParityPlan = ParityPlan(),
                    *, int_high: Any = None) -> list[InputCase]:
    """The planned cases with seeded generated inputs (see :func:`onnxbridge.parity.inputs.generate_inputs`)."""
    from .inputs import generate_inputs

    return [InputCase(pc, generate_inputs(specs, pc.sizes, pc.seed, int_high=int_high))
            for pc in plan_cases(axis_sizes, plan)]


def fixture_cases(cases: Sequence[tuple[str, dict[str, Any]]]) -> list[InputCase]:
    """Inputs read from a fixtures file, one case per label."""
    return [InputCase(PlannedCase(CaseKind.FIXTURE, label), feeds) for label, feeds in cases]


def example_case(feeds: Mapping[str, Any]) -> InputCase:
    """The converter's example inputs, at the export sizes."""
    return InputCase(PlannedCase(CaseKind.EXAMPLE, "example"), dict(feeds))
