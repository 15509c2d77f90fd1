"""``convert``: SOURCE -> load -> export (route loop) -> simplify -> optimise -> write -> validate."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .._memory import StagePeaks
from .._util import Progress, no_progress
from ..errors import UsageError
from ..fsutil import check_output_path
from ..options import (
    ConvertOptions,
    ExportOptions,
    OptimizeOptions,
    ParityConfig,
    ToleranceLike,
    Tolerances,
    VariantOptions,
    as_specs,
)
from ..results import Report
from ..specs import TensorSpec
from ._stages import load_source, preflight, read_input_cases, side_timings, simplify_check, validate_model

if TYPE_CHECKING:
    from collections.abc import Callable

    import onnx

    from ..converters.base import Converter, ExportedModel, SourceModel
    from ..results import ConversionResult, ExportedAxis, OptimizeResult, SimplifyResult
    from ..runtime.sessions import OrtRunner, Runner

__all__ = ["convert", "convert_with"]


def convert(
    source: str | Path,
    output: str | Path,
    *,
    inputs: Sequence[str | TensorSpec] | None = None,
    framework: str | None = None,
    opset: int | None = None,
    routes: Sequence[str] | None = None,
    trust_model: bool = False,
    task: str | None = None,
    simplify: bool = True,
    validate: bool = True,
    provider: str = "auto",
    atol: float | None = None,
    rtol: float | None = None,
    tolerances: Mapping[str, ToleranceLike] | Sequence[str] | None = None,
    fallback: str = "warn",
    seed: int = 0,
    inputs_file: str | Path | None = None,
    save_inputs: str | Path | None = None,
    save_outputs: str | Path | None = None,
    optimize: str | None = None,
    fuse_transformer: str | None = None,
    external_data: bool = False,
    simplifier: str = "onnxsim",
    variants: Sequence[str] | str | VariantOptions | None = None,
    new_tokens: int = 32,
    merged_decoder: bool = True,
    progress: Progress | None = None,
) -> Report:
    """Export SOURCE to ``output`` (atomically), simplify it, validate it against the source.

    The keywords build one :class:`~onnxbridge.options.ConvertOptions` (see :func:`convert_with`):
    ``inputs`` / ``framework`` / ``opset`` / ``routes`` / ``trust_model`` / ``task`` the export, the validation
    keywords the parity check, ``optimize`` (``cpu`` / ``cuda``) and ``fuse_transformer`` (``auto`` /
    ``bert`` / ``gpt2`` / ``vit``) ONNX Runtime's optimisations, each parity-checked; ``external_data``
    writes the weights to ``OUTPUT.data`` beside the graph (always so over 2 GB) and takes the
    large-model path (weights on disk, simplified memory-mapped, validated by path).
    ``simplifier``: ``onnxsim`` (default), ``onnxslim``, ``onnxscript`` or ``auto`` (the best of those
    installed); ``variants``: deployment variants to build beside ``output`` (``["fp16", "int8"]``, or
    :class:`~onnxbridge.options.VariantOptions`), each gated on accuracy and speed (see :func:`variant`) on
    the provider, inputs and seed the model is validated with.

    A causal-LM Hugging Face folder with ``output`` a folder (or ``task="text-generation-with-past"``) is
    exported with its KV cache in optimum's layout and judged by generation parity over ``new_tokens``
    greedy tokens per prompt (see :mod:`onnxbridge.generation`); an encoder-decoder's folder also gets
    ``decoder_model_merged.onnx`` unless ``merged_decoder=False``.
    """
    options = ConvertOptions(
        export=ExportOptions(as_specs(inputs), framework, opset, tuple(routes or ()), trust_model, task),
        parity=ParityConfig.build(
            provider=provider,
            atol=atol,
            rtol=rtol,
            tolerances=tolerances,
            fallback=fallback,
            seed=seed,
            inputs_file=inputs_file,
            save_inputs=save_inputs,
            save_outputs=save_outputs,
        ),
        optimize=OptimizeOptions(optimize, fuse_transformer),
        simplify=simplify,
        validate=validate,
        external_data=external_data,
        simplifier=simplifier,
        variants=_variant_options(variants),
        new_tokens=new_tokens,
        merged_decoder=merged_decoder,
    )
    return convert_with(source, output, options, progress)


def _variant_options(variants: Sequence[str] | str | VariantOptions | None) -> VariantOptions | None:
    """``["fp16", "int8"]`` or ``"fp16,int8"`` as options (None: no variants)."""
    if isinstance(variants, VariantOptions):
        return variants
    if not variants:
        return None
    return VariantOptions((variants,) if isinstance(variants, str) else tuple(variants))


def convert_with(
    source: str | Path, output: str | Path, options: ConvertOptions, progress: Progress | None = None
) -> Report:
    """:func:`convert` with its options built already (the CLI, the gate and pipelines call this)."""
    import shutil

    from ..publish import scratch_dir

    source = str(source)
    say = progress or no_progress
    from ..generation.tasks import with_past_task

    task = with_past_task(source, options.export.task, output)
    if task is not None:  # a folder: the graph(s) with their KV cache, configs, tokenizer
        return _convert_with_past(source, output, options, say, task)
    parity = options.parity
    out = check_output_path(output, source, parity.inputs_file)
    preflight(parity, source, output)
    if options.variants is not None:
        from ..variants.stage import variant_targets

        variant_targets(out, options.variants)
    cases = read_input_cases(parity)[0] if options.validate else None
    timings: dict[str, float] = {}
    peaks = StagePeaks()

    say(f"loading {source}")
    t0 = time.perf_counter()
    with peaks.stage("load"):
        converter, loaded = load_source(source, options.export)
        reference = converter.reference_runner(loaded)
    timings["load_s"] = time.perf_counter() - t0

    scratch = scratch_dir(out.parent)  # a large product is written here, then moved into place
    try:
        say("exporting")
        early = _EarlyTransform(loaded, options, say, timings, peaks)
        with peaks.stage("export"):
            product, conversion = _export(converter, loaded, reference, options, scratch / out.name, early)
        timings["export_s"] = conversion.seconds
        timings |= {f"export.{a.route}_s": a.seconds for a in conversion.attempts}
        say(f"writing {out}")
        model, simp, opt = _transform_and_write(
            product, loaded, options, out, scratch, say, timings, peaks, conversion.axis_ranges, early.result(product)
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    validation = None
    if options.validate:
        say("validating")
        with peaks.stage("validate"):
            validation = validate_model(reference, model, parity, loaded.domain, cases, path=out)
        timings["validate_s"] = validation.seconds
        timings |= side_timings(validation)
    elif parity.saves_fixtures:
        from ._stages import save_fixtures

        # the cases validation would run: within the declared (and recorded) ranges of each axis
        save_fixtures(parity, loaded.domain.cases(parity.plan, model), reference)
    variants = None
    if options.variants is not None:
        from ._variants import variants_stage

        say("building variants")
        t0 = time.perf_counter()
        with peaks.stage("variants"):
            variants = variants_stage(out, model, options.variants, reference, loaded.domain, say)
        timings["variants_s"] = time.perf_counter() - t0
    from ._rerun import where_it_breaks

    notes = (
        (opt.notes if opt else ())
        + _product_notes(product, options)
        + where_it_breaks(validation, source, out, options.export, parity)
    )
    return Report(
        command="convert",
        source=source,
        framework=converter.framework,
        output=str(out),
        conversion=conversion,
        simplify=simp,
        validation=validation,
        timings=timings,
        optimize=opt,
        notes=notes,
        peak_rss_bytes=peaks.bytes,
        variants=variants,
    )


def _convert_with_past(source: str, output: str | Path, options: ConvertOptions, say: Progress, task: str) -> Report:
    """The with-past export, then (``--variant int4,int8``) the folder's copies judged on generation."""
    import dataclasses

    from ..generation.convert import convert_with_past

    variants = options.variants
    if variants is not None:  # every check before the export: exit 2 early
        from ..generation.perplexity import check_eval_source
        from ..variants.folder import folder_targets

        if task != "text-generation-with-past":
            raise UsageError(f"--variant is not built for {task} folders yet", "drop --variant")
        folder_targets(Path(output), variants)
        check_eval_source(Path(source), variants.eval_text, variants.eval_ids)
    report = convert_with_past(source, output, options, say, task=task)
    if variants is None:
        return report
    from ..variants.folder import run_folder_variants

    say("building variants of the with-past folder")
    t0 = time.perf_counter()
    result = run_folder_variants(output, variants, progress=say)
    return dataclasses.replace(
        report, variants=result, timings={**report.timings, "variants_s": time.perf_counter() - t0}
    )


def _transform_and_write(
    product: ExportedModel,
    loaded: SourceModel[object],
    options: ConvertOptions,
    out: Path,
    scratch: Path,
    say: Progress,
    timings: dict[str, float],
    peaks: StagePeaks,
    axes: tuple[ExportedAxis, ...] = (),
    transformed: Transformed | None = None,
) -> Transformed:
    """(the model written, as loaded back without weights, or in memory), the simplify and optimise
    results. A product in a file is simplified file to file and moved into place; one in memory is
    transformed in memory (unless ``transformed`` is its transform, done already) and saved. Either way
    the file records each dynamic axis's declared and exported range (``axes``) in its metadata."""
    from ..onnxio import publish_model, save_onnx

    _record_axis_ranges(product.model, loaded, axes)  # the simplify check reads them
    if product.path is None:
        model, simp, opt = transformed or _transform(product.model, loaded, options, say, timings, peaks)
        _record_axis_ranges(model, loaded, axes)
        save_onnx(model, out, external_data=options.external_data)
        return model, simp, opt
    kept, simp = product.path, None
    if options.simplify:
        from ..transforms.simplify import simplify_file

        say("simplifying (weights memory-mapped)")
        with peaks.stage("simplify"):
            check = simplify_check(product.model, loaded.domain, options.parity.seed, path=product.path)
            (scratch / "simplified").mkdir()
            kept, simp = simplify_file(product.path, scratch / "simplified" / out.name, check)
        timings["simplify_s"] = simp.seconds
    _record_axis_ranges_in_file(Path(kept), loaded, axes)
    publish_model(kept, out)
    from ..onnxio import load_onnx

    return load_onnx(out), simp, None


def _record_axis_ranges(model: onnx.ModelProto, loaded: SourceModel[object], axes: tuple[ExportedAxis, ...]) -> None:
    """The declared and exported range of every dynamic axis, in the model's metadata."""
    from ..onnxio import write_axis_ranges
    from ..specs import declared_ranges

    write_axis_ranges(model, declared_ranges(loaded.specs), axes)


def _record_axis_ranges_in_file(path: Path, loaded: SourceModel[object], axes: tuple[ExportedAxis, ...]) -> None:
    """As :func:`_record_axis_ranges`, in a (scratch) file whose weights stay in external data."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    _record_axis_ranges(model, loaded, axes)
    onnx.save(model, str(path))


Transformed = tuple["onnx.ModelProto", "SimplifyResult | None", "OptimizeResult | None"]


class _EarlyTransform:
    """The route loop's ``meanwhile``: simplify (and optimise) a product in memory while its route still
    works out its axis ranges, its checks on the declared ranges alone. Those are the checks the settled
    product gets unless its ranges turn out narrower than declared (``InputDomain.narrowed_by``); then, or
    when another product wins, :meth:`result` is None and the settled product is transformed as usual."""

    def __init__(
        self,
        loaded: SourceModel[object],
        options: ConvertOptions,
        say: Progress,
        timings: dict[str, float],
        peaks: StagePeaks,
    ) -> None:
        self._args = (loaded, options, say, timings, peaks)
        self._done: tuple[onnx.ModelProto, Transformed] | None = None

    def __call__(self, product: ExportedModel) -> None:
        loaded, options, say, timings, peaks = self._args
        if product.path is not None or not (options.simplify or options.optimize.requested):
            return
        peaks.record("export")  # the transform's own stages reset the high-water mark
        _record_axis_ranges(product.model, loaded, ())  # declared ranges only, for now
        try:
            self._done = (product.model, _transform(product.model, loaded, options, say, timings, peaks))
        except Exception:  # the settled product is transformed as usual, and says so there
            self._done = None

    def result(self, product: ExportedModel) -> Transformed | None:
        """The transform of ``product``, when it was done early and its checks stand."""
        loaded = self._args[0]
        if self._done is None or self._done[0] is not product.model or loaded.domain.narrowed_by(product.axis_ranges):
            return None
        return self._done[1]


def _product_notes(product: ExportedModel, options: ConvertOptions) -> tuple[str, ...]:
    if product.path is not None and options.optimize.requested:
        return ("--optimize / --fuse-transformer are not applied to a model whose weights are in external data",)
    return ()


def _export(
    converter: Converter,
    loaded: SourceModel[object],
    reference: Runner,
    options: ConvertOptions,
    save_to: Path,
    meanwhile: Callable[[ExportedModel], object] | None = None,
) -> tuple[ExportedModel, ConversionResult]:
    """The route loop: each route of the converter (or those ``--route`` names), in order
    (``meanwhile``: see :func:`~onnxbridge.converters.base.run_routes`)."""
    from ..converters.base import ExportRequest, ReportsFailingOp, pick_routes, run_routes

    structural, parity = _route_checks(reference, loaded, options)
    return run_routes(
        converter.framework,
        pick_routes(converter.routes(loaded), options.export.routes),
        loaded,
        ExportRequest(
            opset=options.export.opset, save_to=save_to, external_data=options.external_data, debug=options.export.debug
        ),
        validate=structural,
        check_parity=parity,
        failing_op=converter.failing_op if isinstance(converter, ReportsFailingOp) else lambda e: None,
        meanwhile=meanwhile,
    )


def _route_checks(
    reference: Runner, loaded: SourceModel[object], options: ConvertOptions
) -> tuple[Callable[[ExportedModel], object], Callable[[ExportedModel], str | None] | None]:
    """(the structural check, the quick parity check or None without validation) of a route's product.
    The parity check runs on the CPU session the structural check opened: one session per product."""
    if not options.validate:
        return _structural_check, None
    quick = _quick_parity(reference, loaded, options.parity.tolerances)
    opened: list[tuple[ExportedModel, OrtRunner]] = []  # (product, its CPU session) of the last structural check

    def structural(product: ExportedModel) -> None:
        opened[:] = [(product, _structural_check(product))]

    def parity(product: ExportedModel) -> str | None:
        checked, session = opened.pop() if opened else (None, None)
        return quick(product, session if checked is product else None)

    return structural, parity


def _transform(
    model: onnx.ModelProto,
    loaded: SourceModel[object],
    options: ConvertOptions,
    say: Progress,
    timings: dict[str, float],
    peaks: StagePeaks,
) -> tuple[onnx.ModelProto, SimplifyResult | None, OptimizeResult | None]:
    """Simplify, then optimise (each kept only where parity with its input holds)."""
    simp = opt = None
    if options.simplify:
        from ..transforms.simplifiers import simplify_with

        say("simplifying")
        with peaks.stage("simplify"):
            check = simplify_check(model, loaded.domain, options.parity.seed)
            model, simp = simplify_with(model, check, options.simplifier)
        timings["simplify_s"] = simp.seconds
    if options.optimize.requested:
        from ..transforms.optimize import optimize_step, transformer_hints

        say("optimising")
        own = loaded.domain.for_model(model)
        with peaks.stage("optimize"):
            model, opt = optimize_step(
                model,
                options.optimize,
                own.specs,
                dict(own.axis_sizes),
                own.ids,
                options.parity.seed,
                hints=transformer_hints(loaded.model),
            )
        timings["optimize_s"] = opt.seconds
    return model, simp, opt


def _structural_check(product: ExportedModel) -> OrtRunner:
    """Valid ONNX that ONNX Runtime can load on CPU; the CPU session."""
    import onnx

    from ..runtime.sessions import OrtRunner

    onnx.checker.check_model(str(product.path) if product.path is not None else product.model)
    return OrtRunner(product.model, "cpu", path=product.path)


def _quick_parity(
    reference: Runner, loaded: SourceModel[object], tolerances: Tolerances
) -> Callable[[ExportedModel, OrtRunner | None], str | None]:
    """A candidate passes when it matches the reference on the export-size example inputs, judged
    by the tolerances the final validation uses (the same check, over the example alone)."""
    from ..parity.cases import example_case
    from ..parity.check import one_pass
    from ..parity.oracle import PrecisionOracle
    from ..parity.sweep import run_case
    from ..runtime.sessions import OrtRunner

    example = example_case(loaded.example)
    oracle = PrecisionOracle(reference, tolerances.oracle_multiple)  # one float64 twin for every route

    def check(product: ExportedModel, candidate: OrtRunner | None = None) -> str | None:
        """None when ``product`` passes, else why not; ``candidate``: its CPU session, when one is open."""
        if candidate is None:
            candidate = OrtRunner(product.model, "cpu", path=product.path)
        judged = one_pass(tolerances=tolerances, candidate=product.model, cases=[example])
        case = run_case(
            example.case,
            example.feeds,
            reference,
            candidate,
            judged.tolerances,
            dict(judged.compute_dtype),
            oracle=oracle,
        )
        if case.passed:
            return None
        if case.error:
            return case.error
        bad = next(o for o in case.outputs if not o.passed)
        return f"output '{bad.name}' max_abs {bad.max_abs:.3g} exceeds atol {bad.atol:g}"

    return check
