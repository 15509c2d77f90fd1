"""``variant``: deployment variants of an existing ONNX model, each gated on accuracy and speed."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._memory import StagePeaks
from .._util import Progress, no_progress
from ..errors import UsageError
from ..options import ExportOptions, ParityConfig, TimingPlan, VariantOptions, as_path, as_specs, budget_limits
from ..results import Report, VariantsReport
from ..specs import TensorSpec

if TYPE_CHECKING:
    from ..parity.domain import InputDomain

__all__ = ["variant", "variant_with", "variants_stage"]


def variant(
    model: str | Path,
    to: Sequence[str] | str,
    *,
    output: str | Path | None = None,
    out_dir: str | Path | None = None,
    source: str | None = None,
    inputs: Sequence[str | TensorSpec] | None = None,
    framework: str | None = None,
    trust_model: bool = False,
    provider: str = "cpu",
    budget: Mapping[str, float] | Sequence[str] | str | None = None,
    min_speedup: float | None = None,
    write_failed: bool = False,
    inputs_file: str | Path | None = None,
    calibration_method: str = "minmax",
    seed: int = 0,
    axis_sizes: Mapping[str, int] | None = None,
    warmup: int = 3,
    runs: int = 10,
    rounds: int = 3,
    threads: int | None = None,
    engine_cache: str | Path | None = None,
    eval_text: str | Path | None = None,
    eval_ids: str | Path | None = None,
    new_tokens: int = 64,
    prompts: int = 8,
    progress: Progress | None = None,
) -> Report:
    """Build the variants ``to`` (``fp16``, ``bf16``, ``int8``, ``int8-static``, ``int4``, ``ort``) of
    ``model``; each is written (beside the model, or into ``out_dir``, or to ``output`` for one) only when
    it keeps its accuracy budget against ``source`` (else the fp32 model) and beats fp32's p50 latency on
    ``provider``. ``budget`` (``"cosine=0.999,top1_decisive=0.99"`` or a mapping) overrides the defaults,
    ``min_speedup`` the speed rule (0: off), ``write_failed`` writes failing variants too, marked FAIL.

    ``model`` may be a with-past decoder folder (``convert --task text-generation-with-past``): ``int4`` /
    ``int8`` then write a copy folder ``MODEL-KIND`` beside it, judged on generation (``new_tokens`` greedy
    tokens for ``prompts`` prompts) and on perplexity over ``eval_text`` (default: the bundled text, through
    the folder's tokenizer) or ``eval_ids`` (a file of token ids, for a folder without a tokenizer)."""
    options = VariantOptions(
        kinds=(to,) if isinstance(to, str) else tuple(to),
        provider=provider,
        budget=budget_limits(budget),
        min_speedup=min_speedup,
        write_failed=write_failed,
        out_dir=as_path(out_dir),
        output=as_path(output),
        inputs_file=as_path(inputs_file),
        calibration_method=calibration_method,
        seed=seed,
        axis_sizes=tuple((axis_sizes or {}).items()),
        timing=TimingPlan(warmup=warmup, runs=runs),
        rounds=rounds,
        threads=threads,
        engine_cache=as_path(engine_cache),
        eval_text=as_path(eval_text),
        eval_ids=as_path(eval_ids),
        new_tokens=new_tokens,
        prompts=prompts,
    )
    export = ExportOptions(as_specs(inputs), framework, None, (), trust_model)
    return variant_with(model, options, source=source, export=export, progress=progress)


def variant_with(
    model: str | Path,
    options: VariantOptions,
    *,
    source: str | None = None,
    export: ExportOptions = ExportOptions(),
    progress: Progress | None = None,
) -> Report:
    """:func:`variant` with its options built already."""
    from ..onnxio import input_specs, load_onnx
    from ..parity.domain import InputDomain
    from ..variants.kind import VariantTarget
    from ..variants.stage import variant_targets
    from ._stages import preflight

    say = progress or no_progress
    path = Path(model)
    if VariantTarget.of(path) is VariantTarget.WITH_PAST_FOLDER:
        return _folder_variants(path, options, source, say)
    if path.suffix.lower() != ".onnx":
        raise UsageError(
            f"{model} is not an .onnx file or a with-past folder", "onnxbridge variant MODEL.onnx --to int8"
        )
    variant_targets(path, options)
    preflight(ParityConfig(provider=options.provider), path, source)  # a named provider that cannot start: exit 2 now
    say(f"loading {path}")
    peaks = StagePeaks()
    with peaks.stage("load"):
        original = load_onnx(path)
        domain, reference, fw = InputDomain.of(input_specs(original)), None, "onnx"
        if source is not None:
            from ._stages import load_source

            say(f"loading {source}")
            converter, loaded = load_source(source, export)
            reference, fw = converter.reference_runner(loaded), converter.framework
            domain = loaded.domain
    t0 = time.perf_counter()
    with peaks.stage("variants"):
        result = variants_stage(path, original, options, reference, domain, say)
    return Report(
        command="variant",
        source=source or str(path),
        framework=fw,
        output=None,
        variants=result,
        timings={"variants_s": time.perf_counter() - t0},
        peak_rss_bytes=peaks.bytes,
    )


def _folder_variants(path: Path, options: VariantOptions, source: str | None, say: Progress) -> Report:
    """``variant OUT_DIR --to int4``: copies of a with-past decoder folder, judged on generation."""
    from ..variants.folder import run_folder_variants

    if source is not None:
        raise UsageError(
            "--source is not used for a with-past folder: its copies are judged against the fp32 folder",
            f"drop --source (validate {source} against {path} judges the fp32 folder itself)",
        )
    peaks = StagePeaks()
    t0 = time.perf_counter()
    with peaks.stage("variants"):
        result = run_folder_variants(path, options, progress=say)
    return Report(
        command="variant",
        source=str(path),
        framework="onnx",
        output=None,
        variants=result,
        timings={"variants_s": time.perf_counter() - t0},
        peak_rss_bytes=peaks.bytes,
    )


def variants_stage(
    path: Path, model: Any, options: VariantOptions, reference: Any, domain: InputDomain, say: Progress
) -> VariantsReport:
    """The variant stage on a written fp32 model (``convert --variant`` calls it after validation)."""
    from ..variants.stage import run_variants

    own = domain.for_model(model)
    return run_variants(
        path, options, reference=reference, specs=own.specs, axis_sizes=own.axis_sizes, ranges=own.ids, progress=say
    )
