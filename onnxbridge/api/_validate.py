"""``validate``: parity of an ONNX model against its SOURCE, another ONNX model, or golden fixtures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._memory import StagePeaks
from .._util import Progress, no_progress
from ..errors import UsageError
from ..options import ExportOptions, LocalizeOptions, ParityConfig, ToleranceLike, as_path, as_specs
from ..results import Localization, Report
from ..specs import TensorSpec
from ._localize import Reference, load_reference
from ._stages import preflight, read_input_cases, validate_cases

__all__ = ["validate", "validate_with"]


def validate(
    source: str | Path,
    model: str | Path | None = None,
    *,
    inputs: Sequence[str | TensorSpec] | None = None,
    framework: str | None = None,
    trust_model: bool = False,
    task: str | None = None,
    provider: str = "auto",
    atol: float | None = None,
    rtol: float | None = None,
    tolerances: Mapping[str, ToleranceLike] | Sequence[str] | None = None,
    fallback: str = "warn",
    seed: int = 0,
    inputs_file: str | Path | None = None,
    expected_file: str | Path | None = None,
    save_inputs: str | Path | None = None,
    save_outputs: str | Path | None = None,
    localize: bool = False,
    budget_mb: float = 64.0,
    repro_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> Report:
    """Parity of an ONNX model against its SOURCE, another ONNX model, or golden fixtures.

    - ``validate(SOURCE, MODEL.onnx)``: the source framework is the reference;
    - ``validate(A.onnx, B.onnx)``: A on ONNX Runtime CPU is the reference for B;
    - ``validate(MODEL.onnx, inputs_file=IN.npz, expected_file=OUT.npz)``: replay fixtures
      (``expected_file`` alone when it holds the inputs too, as the gate's fixtures do).

    ``localize=True``: when parity fails, say where (see :func:`onnxbridge.api.debug`); ``budget_mb`` and
    ``repro_dir`` as there.
    """
    export = ExportOptions(as_specs(inputs), framework, None, (), trust_model, task)
    parity = ParityConfig.build(
        provider=provider,
        atol=atol,
        rtol=rtol,
        tolerances=tolerances,
        fallback=fallback,
        seed=seed,
        inputs_file=inputs_file,
        expected_file=expected_file,
        save_inputs=save_inputs,
        save_outputs=save_outputs,
    )
    options = LocalizeOptions(budget_mb, as_path(repro_dir)) if localize else None
    return validate_with(source, model, export, parity, progress, localize=options)


def validate_with(
    source: str | Path,
    model: str | Path | None,
    export: ExportOptions,
    parity: ParityConfig,
    progress: Progress | None = None,
    *,
    localize: LocalizeOptions | None = None,
) -> Report:
    """:func:`validate` with its options built already; ``localize``: say where parity breaks, when it does."""
    source = str(source)
    from ..onnxio import input_specs, load_onnx
    from ..parity.domain import InputDomain
    from ..runtime.support import check_runtime_support

    say = progress or no_progress
    from ..generation.lm_source import is_python_source

    if (
        model is not None
        and Path(model).is_dir()
        and ((Path(source) / "config.json").is_file() or is_python_source(source))
        and any((Path(model) / n).is_file() for n in ("model.onnx", "encoder_model.onnx"))
    ):
        from ..generation.convert import validate_with_past  # a with-past folder: generation parity

        return validate_with_past(source, model, export.trust_model, parity, progress=say)
    preflight(parity, source, model)
    if localize is not None:
        from ._debug import check_repro_dir

        check_repro_dir(localize)
    source_onnx, model = _roles(source, model, parity)
    cases, expected = read_input_cases(parity)
    say(f"loading {model}")
    peaks = StagePeaks()
    with peaks.stage("load"):
        candidate_model = load_onnx(model)
        check_runtime_support(candidate_model, model)
    domain, fw, reference_model = InputDomain.of(export.inputs or input_specs(candidate_model)), "onnx", None
    ref: Reference | None = None
    if expected is not None:
        from ..parity.fixtures import FixtureRunner

        reference: Any = FixtureRunner(
            expected,
            [(c.case.label, c.feeds) for c in cases or ()],
            tuple(o.name for o in candidate_model.graph.output),
        )
    else:
        say(f"loading {source}")
        ref, ref_domain = load_reference(source_onnx or source, export)
        reference, reference_model = ref.runner, ref.model
        if ref.loaded is not None:  # a framework source says what its inputs are
            domain, fw, reference_model = ref_domain, ref.direction, None
    say("validating")
    with peaks.stage("validate"):  # the cases really used (redrawn, smallest runnable): localisation reruns one
        report, cases = validate_cases(
            reference, candidate_model, parity, domain, cases, path=model, reference_model=reference_model
        )
    loc: Localization | None = None
    notes: tuple[str, ...] = ()
    if localize is not None and not report.passed:
        if ref is None:
            notes = ("--localize needs a SOURCE or a reference ONNX model: fixtures hold no intermediate values",)
        else:
            from ._debug import localize_validation

            say("localising")
            with peaks.stage("localize"):
                loc, notes = localize_validation(
                    ref, str(model), candidate_model, report, cases, parity, localize, str(source), export
                )
    if localize is None and ref is not None:
        from ._rerun import where_it_breaks

        notes = where_it_breaks(report, source, model, export, parity)
    from ._stages import side_timings

    timings = {"validate_s": report.seconds} | side_timings(report) | ({"localize_s": loc.seconds} if loc else {})
    return Report(
        command="validate",
        source=str(source),
        framework=fw,
        output=str(model),
        validation=report,
        localization=loc,
        timings=timings,
        notes=notes,
        peak_rss_bytes=peaks.bytes,
    )


def _roles(source: str, model: str | Path | None, parity: ParityConfig) -> tuple[str | None, str | Path]:
    """(the reference ONNX file or None, the ONNX file under test) from the two arguments."""
    is_onnx = str(source).lower().endswith(".onnx")
    if model is not None:
        return (source if is_onnx else None), model
    if not is_onnx:
        raise UsageError("validate needs an ONNX model", "onnxbridge validate SOURCE MODEL.onnx")
    if not parity.expected_file:
        raise UsageError(
            f"validate {source} alone needs --inputs IN.npz --expected OUT.npz",
            "or give a SOURCE (or a second ONNX model) to compare with",
        )
    return None, source
