"""The parity check, built in one place: from the inputs (an :class:`~.domain.InputDomain` and a plan, or
given cases), the tolerances, and the models being compared.

Every stage that judges a model against a reference (convert and its quick route check, validate, simplify,
optimise, upgrade, the variants, the gate's replay and its check against the source) builds its check with
:func:`one_pass` and runs it, so each judges the same outputs at the same tolerances: an output computed in
float16 in either model is judged at float16's tolerances everywhere, the gate's replay included.

:class:`ParityCheck` is what a check is to the stages: something that judges a candidate against a
reference and returns a report with the inputs it really used. :class:`OnePassCheck` is today's check (each
case run once on both sides, every output compared); a stateful multi-step check (token-by-token greedy
decoding through a KV cache) or a check over a model made of several graphs (encoder + decoder) is another
implementation of the same protocol, run by the same stages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from ..options import ParityPlan, Tolerances

if TYPE_CHECKING:
    import onnx

    from ..results import ParityReport
    from ..runtime.sessions import OrtRunner, Runner
    from ..specs import TensorSpec
    from .cases import AxisBounds, InputCase
    from .domain import InputDomain
    from .inputs import IdRanges

__all__ = ["ParityCheck", "OnePassCheck", "one_pass", "check_generated", "compute_dtypes"]


C_contra = TypeVar("C_contra", contravariant=True)


@runtime_checkable
class ParityCheck(Protocol[C_contra]):
    """Judges ``candidate`` against ``reference``: the report, and the inputs really used (one per case,
    redrawn or at the smallest runnable size where the source needed it). ``C_contra`` is what the candidate is:
    one ONNX Runtime session for :class:`OnePassCheck`; the sessions of an encoder and a decoder, or a
    decoder with its KV cache stepped token by token, for the checks that need them."""

    def run(self, reference: Runner, candidate: C_contra) -> tuple[ParityReport, list[InputCase]]: ...


@dataclass(frozen=True)
class OnePassCheck:
    """Each case run once on both sides and every output compared (see :func:`~.sweep.run_parity`).

    ``compute_dtype``: output -> the float16 / bfloat16 type it is computed from in either model (judged at
    that type's tolerances); ``domain``: when the cases are generated, the domain that draws the smallest
    runnable size of an axis the source cannot run at the planned one."""

    cases: tuple[InputCase, ...]
    tolerances: Tolerances = field(default_factory=Tolerances)
    compute_dtype: Mapping[str, str | None] = field(default_factory=dict)
    bounds: Mapping[str, AxisBounds] = field(default_factory=dict)
    domain: InputDomain | None = None

    def run(self, reference: Runner, candidate: OrtRunner) -> tuple[ParityReport, list[InputCase]]:
        from .sweep import run_parity

        maker = self.domain.case if self.domain is not None else None
        return run_parity(
            reference,
            candidate,
            self.cases,
            tolerances=self.tolerances,
            compute_dtype=dict(self.compute_dtype),
            bounds=self.bounds,
            maker=maker,
        )

    def report(self, reference: Runner, candidate: OrtRunner) -> ParityReport:
        return self.run(reference, candidate)[0]


def one_pass(
    *,
    tolerances: Tolerances = Tolerances(),
    candidate: onnx.ModelProto | None = None,
    reference: onnx.ModelProto | None = None,
    domain: InputDomain | None = None,
    plan: ParityPlan | None = None,
    cases: Sequence[InputCase] | None = None,
    redraw: bool = True,
) -> OnePassCheck:
    """The one-pass check of ``candidate`` (an ONNX model) against a reference (``reference``: its ONNX
    model, when it is one): over ``cases`` when given (fixtures, ``--inputs``, the example), else the cases
    ``plan`` draws from ``domain`` within each axis's declared and recorded range. Outputs that depend on
    float16 / bfloat16 values in either model are judged at that type's tolerances. ``redraw=False``: the
    reference answers only the inputs it was recorded on (no redraws, no smallest-runnable search)."""
    import dataclasses

    bounds = domain.bounds(candidate) if domain is not None else {}
    generated = cases is None
    if cases is None:
        if domain is None:
            raise ValueError("a parity check needs cases or a domain to draw them from")
        cases = domain.cases(plan or ParityPlan(), candidate)
    if not redraw:
        cases = [dataclasses.replace(c, redraw=None) for c in cases]
    maker_domain = domain.for_model(candidate) if generated and redraw and domain is not None else None
    return OnePassCheck(tuple(cases), tolerances, compute_dtypes(candidate, reference), bounds, maker_domain)


def compute_dtypes(model: onnx.ModelProto | None, reference: onnx.ModelProto | None = None) -> dict[str, str | None]:
    """Output -> the float16 / bfloat16 type it is computed from in either model (None: full precision)."""
    from .sweep import output_compute_dtypes

    narrow = output_compute_dtypes(model) if model is not None else {}
    if reference is not None:
        for name, dtype in output_compute_dtypes(reference).items():
            if dtype and name in narrow:
                narrow[name] = "bfloat16" if "bfloat16" in (narrow[name], dtype) else "float16"
            elif dtype and model is None:
                narrow[name] = dtype
    return narrow


def check_generated(
    reference: Runner,
    candidate: OrtRunner,
    specs: Sequence[TensorSpec],
    axis_sizes: Mapping[str, int],
    plan: ParityPlan = ParityPlan(),
    *,
    int_high: IdRanges | int | Mapping[str, int] | None = None,
    tolerances: Tolerances = Tolerances(),
) -> ParityReport:
    """The one check (:func:`one_pass`) over generated inputs: the plan's seeds, then
    the sweep, on the domain ``specs`` / ``axis_sizes`` / ``int_high`` describe (float16-computed outputs of
    the candidate judged at float16's tolerances)."""
    from .domain import InputDomain

    domain = InputDomain.of(tuple(specs), axis_sizes, int_high)
    check = one_pass(tolerances=tolerances, candidate=candidate.model, domain=domain, plan=plan)
    return check.report(reference, candidate)
