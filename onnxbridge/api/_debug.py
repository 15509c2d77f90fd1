"""``debug``: where parity breaks. The stage that breaks it, the first module / layer / node inside that
stage, the per-layer error along the model, and the minimal failing subgraph.

- ``debug(SOURCE, [A.onnx, B.onnx, ...])``: the source framework, then each ONNX file as a stage in
  order (exported, simplified, fp16 ...), the last one also on the validation provider;
- ``debug(A.onnx, [B.onnx, ...])``: A on ONNX Runtime CPU is the reference;
- ``debug(SOURCE)``: the pipeline rerun in memory: exported (the route ``convert`` picks), simplified.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .._memory import StagePeaks
from .._util import Progress, first_line, no_progress
from ..errors import UsageError
from ..fsutil import check_output_path
from ..options import ConvertOptions, ExportOptions, LocalizeOptions, ParityConfig, ToleranceLike, as_path, as_specs
from ..results import Localization, ParityReport, Report, Side
from ..specs import TensorSpec
from ._localize import Candidate, Reference, load_reference, localize_case
from ._rerun import debug_command
from ._stages import preflight, read_input_cases, validate_cases

if TYPE_CHECKING:
    import onnx

    from ..parity.cases import InputCase
    from ..results import ConversionResult

__all__ = ["debug", "debug_with", "localize_validation"]


def debug(
    source: str | Path,
    models: Sequence[str | Path] | str | Path = (),
    *,
    inputs: Sequence[str | TensorSpec] | None = None,
    framework: str | None = None,
    trust_model: bool = False,
    task: str | None = None,
    provider: str = "auto",
    atol: float | None = None,
    rtol: float | None = None,
    tolerances: Mapping[str, ToleranceLike] | Sequence[str] | None = None,
    seed: int = 0,
    inputs_file: str | Path | None = None,
    budget_mb: float = 64.0,
    repro_dir: str | Path | None = None,
    new_tokens: int = 32,
    progress: Progress | None = None,
) -> Report:
    """Where ``models`` (ONNX files, in pipeline order) first leave SOURCE (a framework source or an ONNX
    reference), on the first failing case of a validation of the last model.

    ``models`` one with-past folder (``convert ... --task text-generation-with-past``) and SOURCE its Hugging
    Face folder or Python source: the generation's prompts are replayed step by step (up to ``new_tokens``)
    and the report's ``cache_divergence`` names the first (step, layer, key | value) that leaves the source.

    ``budget_mb`` bounds the intermediate values held at once; ``repro_dir`` is where the minimal failing
    subgraph (``MODEL.repro.onnx`` + ``MODEL.repro.npz``) is written. The report's ``localization`` holds
    the answer; ``passed`` is the validation's verdict.
    """
    export = ExportOptions(as_specs(inputs), framework, None, (), trust_model, task)
    parity = ParityConfig.build(
        provider=provider, atol=atol, rtol=rtol, tolerances=tolerances, seed=seed, inputs_file=inputs_file
    )
    paths = [models] if isinstance(models, (str, Path)) else list(models)
    return debug_with(
        source, paths, export, parity, LocalizeOptions(budget_mb, as_path(repro_dir)), progress, new_tokens=new_tokens
    )


def debug_with(
    source: str | Path,
    models: Sequence[str | Path],
    export: ExportOptions,
    parity: ParityConfig,
    options: LocalizeOptions,
    progress: Progress | None = None,
    *,
    new_tokens: int = 32,
) -> Report:
    """:func:`debug` with its options built already."""
    source = str(source)
    say = progress or no_progress
    paths = [str(m) for m in models]
    if len(paths) == 1 and Path(paths[0]).is_dir():  # a with-past folder: replay its KV cache step by step
        from ..generation.cache_debug import debug_with_past

        return debug_with_past(
            source,
            paths[0],
            trust=export.trust_model,
            new_tokens=new_tokens,
            atol=parity.tolerances.atol,
            provider=parity.provider,
            seed=parity.seed,
            progress=say,
        )
    preflight(parity, source, *paths)
    check_repro_dir(options)
    if parity.expected_file:
        raise UsageError(
            "debug compares with a SOURCE or a reference ONNX model, not with fixtures",
            "give the SOURCE (or the original .onnx) and the model: onnxbridge debug SOURCE MODEL.onnx",
        )
    is_onnx = str(source).lower().endswith(".onnx")
    if is_onnx and not paths:
        raise UsageError(f"debug {source} alone has nothing to compare", "onnxbridge debug A.onnx B.onnx")
    cases, _ = read_input_cases(parity)
    say(f"loading {source}")
    peaks = StagePeaks()
    with peaks.stage("load"):
        reference, domain = load_reference(source, export)
    conversion = None
    with tempfile.TemporaryDirectory(prefix="onnxbridge-debug-") as scratch:  # an export too large for memory
        if paths:
            candidates = [Candidate(name, _load(p), p) for name, p in zip(stage_names(paths), paths)]
        else:
            with peaks.stage("export"):
                candidates, conversion = _pipeline(reference, export, parity, say, Path(scratch))
        last = candidates[-1]
        say("validating")
        with peaks.stage("validate"):
            validation, cases = validate_cases(
                reference.runner, last.model, parity, domain, cases, path=last.path, reference_model=reference.model
            )
        say("localising")
        with peaks.stage("localize"):
            loc, notes = _localize(
                reference, candidates, validation, cases, parity, options, debug_command(source, paths, export, parity)
            )
    return Report(
        command="debug",
        source=str(source),
        framework=reference.direction,
        output=last.path,
        conversion=conversion,
        validation=validation,
        localization=loc,
        notes=notes,
        timings={"validate_s": validation.seconds} | ({"localize_s": loc.seconds} if loc else {}),
        peak_rss_bytes=peaks.bytes,
    )


def _load(path: str) -> onnx.ModelProto:
    from ..onnxio import load_onnx

    return load_onnx(path)


def _pipeline(
    reference: Reference, export: ExportOptions, parity: ParityConfig, say: Progress, scratch: Path
) -> tuple[list[Candidate], ConversionResult]:
    """``debug SOURCE`` alone: export as ``convert`` does, then simplify, each kept in memory as a stage (an
    export whose weights go to external data is written in ``scratch`` and not simplified)."""
    from ..transforms.simplify import run_onnxsim
    from ._convert import _export, _record_axis_ranges

    loaded = reference.loaded
    if loaded is None:
        raise UsageError("debug SOURCE without a model needs a framework source", "onnxbridge debug A.onnx B.onnx")
    from ..converters.registry import default_registry

    say("exporting")
    converter = default_registry().get(loaded.framework)()
    product, conversion = _export(
        converter, loaded, reference.runner, ConvertOptions(export=export, parity=parity), scratch / "exported.onnx"
    )
    _record_axis_ranges(product.model, loaded, conversion.axis_ranges)  # as convert does: the sweep reads them
    if product.path is not None:
        note = "the exported model's weights are in external data: not simplified in memory"
        return (
            [Candidate("exported", product.model, str(product.path))],
            dataclasses.replace(conversion, notes=conversion.notes + (note,)),
        )
    stages = [Candidate("exported", product.model)]
    say("simplifying")
    try:
        simplified = run_onnxsim(product.model)
    except Exception as e:  # onnxsim cannot take every graph; the exported stage stands alone then
        conversion = dataclasses.replace(conversion, notes=conversion.notes + (f"onnxsim failed: {first_line(e)}",))
    else:
        _record_axis_ranges(simplified, loaded, conversion.axis_ranges)
        stages.append(Candidate("simplified", simplified))
    return stages, conversion


def stage_names(models: Sequence[str]) -> list[str]:
    """A stage per file, named after its stem (``simplified.onnx`` -> ``simplified``), else its path."""
    stems = [Path(m).stem for m in models]
    return [s if stems.count(s) == 1 else str(m) for s, m in zip(stems, models)]


def case_to_localize(validation: ParityReport) -> int:
    """The first case whose outputs the candidate got wrong (or could not compute), else the first case."""
    for k, c in enumerate(validation.cases):
        if not c.passed and c.failed_side is not Side.REFERENCE:
            return k
    return 0


def check_repro_dir(options: LocalizeOptions) -> None:
    """The repro folder must exist and be writable before any work starts."""
    if options.repro_dir is not None:
        if not options.repro_dir.is_dir():
            raise UsageError(f"--repro-dir {options.repro_dir} is not a folder", "create it first, or choose another")
        check_output_path(options.repro_dir / "probe.onnx", what="repro")


def localize_validation(
    reference: Reference,
    model_path: str,
    candidate_model: onnx.ModelProto,
    validation: ParityReport,
    cases: Sequence[InputCase],
    parity: ParityConfig,
    options: LocalizeOptions,
    source: str,
    export: ExportOptions,
) -> tuple[Localization | None, tuple[str, ...]]:
    """``validate --localize``: localise the first failing case of a validation that failed; (the
    localisation or None, notes saying why not)."""
    candidates = [Candidate(stage_names([model_path])[0], candidate_model, model_path)]
    return _localize(
        reference, candidates, validation, cases, parity, options, debug_command(source, [model_path], export, parity)
    )


def _localize(
    reference: Reference,
    candidates: Sequence[Candidate],
    validation: ParityReport,
    cases: Sequence[InputCase],
    parity: ParityConfig,
    options: LocalizeOptions,
    command: str,
) -> tuple[Localization | None, tuple[str, ...]]:
    """The localisation of the validation's first failing case (``cases``: the inputs it really used), or
    None and why not: a source that does not repeat itself has noise, not a place where it diverges."""
    if validation.source_repeats is False:
        return None, (
            "not localised: the source does not repeat itself (see the validation), so a layer-by-layer "
            "comparison would only follow its noise",
        )
    k = case_to_localize(validation)
    return localize_case(
        reference,
        candidates,
        cases[k].feeds,
        cases[k].case.label,
        parity,
        options,
        provider_used=validation.provider_used,
        command=command,
    ), ()
