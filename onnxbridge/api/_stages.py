"""The stages the verbs share: load a SOURCE, check paths and providers up front, simplify, validate,
and write fixtures. Each takes typed values (option objects, loaded models, cases) and returns one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..fsutil import check_output_path
from ..options import ExportOptions, ParityConfig, ParityPlan
from ..results import ParityReport

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..converters.base import Converter, SourceModel
    from ..parity.cases import AxisBounds, InputCase
    from ..parity.domain import InputDomain
    from ..parity.fixtures import Fixtures
    from ..parity.inputs import IdRanges
    from ..runtime.sessions import Runner

__all__ = [
    "load_source",
    "preflight",
    "read_input_cases",
    "simplify_check",
    "validate_model",
    "validate_cases",
    "side_timings",
    "save_fixtures",
    "id_ranges",
    "axis_bounds",
]


def load_source(source: str, export: ExportOptions = ExportOptions()) -> tuple[Converter, SourceModel[object]]:
    """SOURCE -> (converter, source model). Imports the framework the source needs, nothing else."""
    from .._util import quiet
    from ..converters.base import TakesTask
    from ..converters.registry import default_registry
    from ..sources import detect_framework, fresh_names, load_python_object, parse_source, resolve_factory

    registry = default_registry()
    ref = parse_source(source, export.framework, registry)
    fw = ref.framework
    obj: Any = None
    if fw == "onnx":
        raise UsageError(f"{source} is already an ONNX model", "use onnxbridge simplify / validate / bench on it")
    if fw is None and ref.is_python:
        # the user's module may import a framework that writes to the terminal as it starts (TensorFlow)
        with quiet(enabled=not export.debug), fresh_names():
            obj = load_python_object(ref)
            fw = detect_framework(obj, registry)
            model, example = (obj, None) if fw is not None else resolve_factory(obj, source, registry)
        if fw is None:
            fw = detect_framework(model, registry)
            if fw is None:
                raise UsageError(
                    f"{source} gives a {type(model).__name__}; cannot tell its framework",
                    f"return a model of a framework onnxbridge knows ({', '.join(registry.names())}), "
                    "or pass --framework",
                )
            obj = lambda m=model, e=example: (m, e) if e is not None else m
    if fw is None:  # parse_source names the framework of every source that is not Python code
        raise UsageError(f"cannot tell the framework of {source}", "pass --framework")
    converter = registry.get(fw)()
    if export.task is not None:
        if not isinstance(converter, TakesTask):
            raise UsageError(f"--task does not apply to {fw} sources", "leave it out (it picks a Hugging Face head)")
        return converter, converter.load(ref, export.inputs, trust=export.trust_model, obj=obj, task=export.task)
    return converter, converter.load(ref, export.inputs, trust=export.trust_model, obj=obj)


def preflight(parity: ParityConfig, *inputs: str | Path | None) -> None:
    """Before any work: fixture outputs that would overwrite an input, and a named provider that cannot start."""
    for target in parity.fixture_outputs:
        check_output_path(target, *inputs, *parity.fixture_inputs, what="fixture")
    _preflight_provider(parity.provider)


def _preflight_provider(provider: str) -> None:
    """Fail fast (before any export) when an explicitly named provider cannot start."""
    from ..options.providers import is_gpu

    if not is_gpu(provider):
        return
    from ..runtime.providers import create_session
    from ..runtime.support import identity_probe

    create_session(identity_probe({"": 13}), provider)


def read_input_cases(parity: ParityConfig) -> tuple[list[InputCase] | None, Fixtures | None]:
    """The cases of ``--inputs`` (or of ``--expected`` alone, when it holds inputs too), and the
    ``--expected`` fixtures; each file is read once."""
    from ..parity.cases import fixture_cases
    from ..parity.fixtures import INPUTS, load_cases, read_fixtures

    expected = read_fixtures(parity.expected_file) if parity.expected_file else None
    if parity.inputs_file:
        if expected is not None and parity.inputs_file.resolve() == expected.path.resolve():
            cases = list(expected.side(INPUTS))
        else:
            cases = load_cases(parity.inputs_file)
        return fixture_cases(cases), expected
    if expected is not None:
        if expected.legacy or not expected.inputs:
            raise UsageError("--expected needs --inputs", "pass the --inputs file written by the same run")
        return fixture_cases(expected.inputs), expected
    return None, None


def id_ranges(model: onnx.ModelProto, guess: IdRanges | int | Mapping[str, int] | None) -> IdRanges:
    """Per-input id ranges: the table each id input indexes in the ONNX graph, else the converter's guess."""
    from ..parity.inputs import IdRanges

    return IdRanges.of(guess).with_graph(model)


def axis_bounds(domain: InputDomain, model: onnx.ModelProto) -> dict[str, AxisBounds]:
    """What is known of each dynamic axis before the sweep (see :meth:`InputDomain.bounds`)."""
    return domain.bounds(model)


def simplify_check(
    original: onnx.ModelProto, domain: InputDomain, seed: int, *, path: str | Path | None = None
) -> Callable[..., ParityReport]:
    """The check a simplified model must pass: the unsimplified one on ONNX Runtime CPU as reference.

    The reference's outputs are recorded now and its session released, so the unsimplified and
    the simplified model never hold their weights in memory at once. ``check(simplified, path=...)``
    takes the simplified model (and its file, when its weights are external). Sizes the unsimplified
    model cannot run are listed, not compared; when no case at all can be compared, the report says so
    (it never passes).
    """
    from ..parity.check import one_pass
    from ..runtime.sessions import OrtRunner

    # no redraws: the recorded reference answers only the inputs it was recorded on
    parity = one_pass(candidate=original, domain=domain, plan=ParityPlan.from_seed(seed, 1), redraw=False)
    reference = Recorded(
        OrtRunner(original, "cpu", path=path, name="unsimplified model (onnxruntime cpu)"), parity.cases
    )

    def check(simplified: onnx.ModelProto, path: str | Path | None = None) -> ParityReport:
        candidate = OrtRunner(simplified, "cpu", path=path)
        try:
            return parity.report(reference, candidate)
        except UsageError as e:  # the unsimplified model runs no generated input: nothing to compare
            return ParityReport(
                reference.name,
                "cpu",
                candidate.provider.used,
                (),
                False,
                (),
                {},
                notes=(e.message.replace("the source", "the unsimplified model"),),
            )

    return check


class Recorded:
    """A runner's outputs on known cases, recorded up front; the runner itself is not kept."""

    def __init__(self, runner: Runner, cases: Sequence[InputCase]) -> None:
        self.name = runner.name
        self._output_names = runner.output_names
        self._outputs: list[tuple[dict[str, Any], list[np.ndarray] | BaseException]] = []
        for c in cases:
            try:
                self._outputs.append((c.feeds, runner.run(c.feeds)))
            except Exception as e:  # replayed when the case is run
                self._outputs.append((c.feeds, e))

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._output_names

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        for stored, outs in self._outputs:
            if stored is feeds:
                if isinstance(outs, BaseException):
                    raise outs
                return outs
        raise UsageError("no recorded outputs for these inputs", "run the cases the reference was recorded on")


def validate_model(
    reference: Runner,
    model: onnx.ModelProto,
    parity: ParityConfig,
    domain: InputDomain,
    cases: list[InputCase] | None,
    *,
    path: str | Path | None = None,
    reference_model: onnx.ModelProto | None = None,
) -> ParityReport:
    """Parity of ``model`` (on the provider asked for, placement profiled) against ``reference``, over
    ``cases`` or the generated plan; writes the fixtures asked for."""
    return validate_cases(reference, model, parity, domain, cases, path=path, reference_model=reference_model)[0]


def validate_cases(
    reference: Runner,
    model: onnx.ModelProto,
    parity: ParityConfig,
    domain: InputDomain,
    cases: list[InputCase] | None,
    *,
    path: str | Path | None = None,
    reference_model: onnx.ModelProto | None = None,
) -> tuple[ParityReport, list[InputCase]]:
    """:func:`validate_model`, and the cases with the inputs really used (redrawn, smallest runnable), one
    per case of the report: the localisation reruns the failing one."""
    from ..parity.check import one_pass
    from ..runtime.placement import apply_fallback_policy
    from ..runtime.sessions import OrtRunner

    check = one_pass(
        tolerances=parity.tolerances,
        candidate=model,
        reference=reference_model,
        domain=domain,
        plan=parity.plan,
        cases=cases,
    )
    candidate = OrtRunner(model, parity.provider, path=path, profile=True, fallback=parity.fallback)
    report, used = check.run(reference, candidate)
    notes = list(report.notes)
    narrow = check.compute_dtype
    loosened = sorted(n for n, d in narrow.items() if d)
    if loosened:
        kinds = "/".join(sorted({d for d in narrow.values() if d}))
        notes.append(
            f"the model computes in {kinds}: outputs that depend on it are judged at its default "
            f"tolerances ({', '.join(loosened)})"
        )
    fallback = apply_fallback_policy(report.placement, parity.fallback)
    if fallback:
        notes.append(fallback)
    save_fixtures(parity, used, reference)
    return dataclasses.replace(report, notes=tuple(notes)), used


def narrow_outputs(model: onnx.ModelProto, reference_model: onnx.ModelProto | None = None) -> dict[str, str | None]:
    """Output -> the float16 / bfloat16 type it is computed from in either model (None: full precision)."""
    from ..parity.check import compute_dtypes

    return compute_dtypes(model, reference_model)


def save_fixtures(parity: ParityConfig, cases: Sequence[InputCase], reference: Runner) -> None:
    """``--save-inputs``: the inputs of every case; ``--save-outputs``: the reference's outputs on them."""
    from ..parity.fixtures import write_fixtures

    if parity.save_inputs:
        write_fixtures(parity.save_inputs, inputs=[(c.case.label, c.feeds) for c in cases])
    if parity.save_outputs:
        names = reference.output_names
        write_fixtures(
            parity.save_outputs, outputs=[(c.case.label, dict(zip(names, reference.run(c.feeds)))) for c in cases]
        )


def side_timings(validation: ParityReport) -> dict[str, float]:
    """The wall time of every case's runs, summed per side: ``validate.source_s``, ``validate.onnx_s``."""
    cases = validation.cases
    return {
        "validate.source_s": sum(c.source_s or 0.0 for c in cases),
        "validate.onnx_s": sum(c.onnx_s or 0.0 for c in cases),
    }
