"""The variant stage: build every variant asked for, judge each against its accuracy budget and against
fp32's speed on the same provider in the same run, and write only those that pass.

Inputs: ``--inputs FILE.npz`` (its even cases calibrate int8-static and drive the fp16 search, its odd
cases judge every variant, so the judging cases are never the calibration ones), else generated inputs
(the judging seeds from ``--seed``, the calibration seeds from ``--seed`` + 1000). The reference is the
source framework when there is one (``convert --variant``, ``variant --source``), else the fp32 model.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._util import Progress, first_line, no_progress
from ..errors import OnnxBridgeError, UsageError
from ..options import DECISIVE_MARGIN, VariantOptions
from ..options.providers import is_gpu
from ..results import LatencyStats, VariantResult, VariantsReport, VariantStatus
from ..runtime.capabilities import Releasable, TimedReference
from ._graph import file_size, run
from .accuracy import judge_accuracy, measure
from .build import BuildContext, Built, VariantUnavailable, build_variant
from .kind import VariantKind, VariantKinds
from .registry import KINDS

__all__ = ["variant_targets", "Cases", "variant_cases", "run_variants"]

Feeds = dict[str, np.ndarray]


def variant_targets(model_path: Path, options: VariantOptions, kinds: VariantKinds = KINDS) -> dict[str, Path]:
    """Where each variant goes (checked before any work: a known kind, writable, never the input itself)."""
    from ..fsutil import check_output_path

    resolved = kinds.resolve(options.kinds)
    for kind in resolved:
        kind.budget_for(options)  # a generation metric in --budget: exit 2 now
    if options.output is not None:
        targets = {options.kinds[0]: options.output}
    else:
        folder = options.out_dir or model_path.parent
        targets = {k.name: folder / k.filename(model_path) for k in resolved}
    for path in targets.values():
        check_output_path(path, model_path, options.inputs_file, what="variant")
    return targets


@dataclass(frozen=True)
class Cases:
    """Inputs that judge the variants, inputs that calibrate them (disjoint when they can be), and
    one line saying where both came from."""

    judge: list[Feeds]
    calibrate: list[Feeds]
    description: str


def variant_cases(
    model, options: VariantOptions, specs: Sequence[Any], axis_sizes: Mapping[str, int], ranges: Any
) -> Cases:
    """The cases of ``--inputs`` (checked against the model: exit 2 when they do not fit), else generated."""
    if options.inputs_file is not None:
        from ..parity.fixtures import load_cases
        from .calibration import fit_cases

        cases = fit_cases(model, load_cases(options.inputs_file), str(options.inputs_file))
        if len(cases) == 1:
            return Cases(cases, cases, f"{options.inputs_file}: 1 case, used to calibrate and to judge (not disjoint)")
        return Cases(
            cases[1::2],
            cases[0::2],
            f"{options.inputs_file}: {len(cases[1::2])} odd case(s) judge, {len(cases[0::2])} even case(s) calibrate",
        )
    from ..options import ParityPlan
    from ..parity.cases import generated_cases

    sizes = {**dict(axis_sizes), **dict(options.axis_sizes)}

    def make(first: int, count: int) -> list[Feeds]:
        plan = ParityPlan(tuple(range(first, first + count)), sweep=False)
        return [c.feeds for c in generated_cases(specs, sizes, plan, int_high=ranges)]

    seed = options.seed
    return Cases(
        make(seed, options.eval_cases),
        make(seed + 1000, options.calibration_cases),
        f"generated: {options.eval_cases} case(s) judge (seeds {seed}..{seed + options.eval_cases - 1}), "
        f"{options.calibration_cases} calibrate (seeds from {seed + 1000})",
    )


@dataclass
class _Candidate:
    """A variant on its way: built (or not), loaded, measured."""

    kind: VariantKind
    target: Path
    built: Built | None = None
    session: Any = None
    unavailable: VariantUnavailable | None = None
    outputs: tuple = ()
    failures: tuple[str, ...] = ()
    engine_build_s: float | None = None


def _open(payload: bytes | str, options: VariantOptions, feeds: Feeds, fp16: bool, folder: Path):
    """(session, provider used, TensorRT engine build seconds or None) on the provider asked for."""
    from ..runtime.providers import create_session
    from ..runtime.timing import session_options

    so = session_options(options.threads, "all")
    if options.provider != "tensorrt":
        sess, choice = create_session(payload, options.provider, options=so)
        return sess, choice.used, None
    from ..runtime.tensorrt import TrtSettings, build_engine

    cache = options.engine_cache or folder / ".onnxbridge-trt-cache"
    sess, choice, build = build_engine(payload, feeds, TrtSettings(cache, fp16=fp16), options=so)
    return sess, choice.used, build.build_s


def run_variants(
    model_path: Path,
    options: VariantOptions,
    *,
    reference: Any = None,
    specs: Sequence[Any] = (),
    axis_sizes: Mapping[str, int] | None = None,
    ranges: Any = None,
    progress: Progress | None = None,
    kinds: VariantKinds = KINDS,
) -> VariantsReport:
    """Build, judge and write (or refuse) every variant of the fp32 model at ``model_path`` (``kinds``:
    the registry its kind names are looked up in)."""
    from ..onnxio import load_onnx, load_weights, session_payload
    from ..publish import scratch_dir
    from ..runtime.providers import short_provider

    say = progress or no_progress
    model_path = Path(model_path)
    model = load_onnx(model_path)
    payload = session_payload(model, model_path)  # checked by load_onnx
    model = load_weights(model, model_path)  # the builders need the weights in memory
    targets = variant_targets(model_path, options, kinds)
    cases = variant_cases(model, options, specs, axis_sizes or {}, ranges)
    folder = next(iter(targets.values())).parent
    fp32, provider_used, fp32_build = _open(payload, options, cases.judge[0], False, folder)
    requested = options.provider  # "auto" is resolved to what really runs: every variant is built and run there
    options = dataclasses.replace(options, provider=short_provider(provider_used))
    names = [o.name for o in fp32.get_outputs()]
    say("running the reference")
    source_outputs = [reference.run(c) for c in cases.judge] if reference is not None else None
    fp32_outputs = [run(fp32, c) for c in cases.judge]
    refs = source_outputs if source_outputs is not None else fp32_outputs  # no source: fp32 is the reference
    if len(refs[0]) != len(names):
        raise UsageError(
            f"the reference gives {len(refs[0])} output(s), the ONNX model {len(names)} ({', '.join(names)})",
            "compare the model with the source it was exported from",
        )
    fp32_accuracy = measure(refs, fp32_outputs, names, DECISIVE_MARGIN)
    tmp = scratch_dir(folder)  # named as recover() knows: a killed run's build folder is cleared later
    try:
        candidates = [
            _candidate(kind, targets[kind.name], model, model_path, tmp, options, cases, refs, names, say)
            for kind in kinds.resolve(options.kinds)
        ]
        say("timing the variants beside fp32")
        stats, eager, timing_notes = _time(
            fp32, [c for c in candidates if c.session is not None], reference, cases.judge[0], options
        )
        fp32_size = file_size(model_path)
        results = tuple(_finish(c, stats, eager, options, fp32_size) for c in candidates)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    timing = {
        "warmup": options.timing.warmup,
        "runs_per_round": options.timing.runs,
        "rounds": options.rounds,
        "threads": options.threads,
        "statistic": "p50",
        "order": "interleaved rounds",
    }
    if fp32_build is not None:
        timing["fp32_engine_build_s"] = fp32_build
    return VariantsReport(
        model=str(model_path),
        reference=reference.name if reference is not None else "fp32 model (onnxruntime)",
        provider_requested=requested,
        provider_used=provider_used,
        fp32_size_bytes=fp32_size,
        fp32_latency=stats.get("fp32"),
        eager_latency=eager,
        fp32_accuracy=fp32_accuracy,
        variants=results,
        inputs=cases.description,
        eval_cases=len(cases.judge),
        calibration_cases=len(cases.calibrate),
        shapes={k: tuple(int(d) for d in np.shape(v)) for k, v in cases.judge[0].items()},
        decisive_margin=DECISIVE_MARGIN,
        timing=timing,
        load_average=_load(),
        notes=tuple(timing_notes),
    )


def _candidate(
    kind: VariantKind,
    target: Path,
    model,
    model_path: Path,
    tmp: Path,
    options: VariantOptions,
    cases: Cases,
    refs: list,
    names: list[str],
    say: Progress,
) -> _Candidate:
    c = _Candidate(kind, target)
    budget = kind.budget_for(options)
    ctx = BuildContext(
        options.provider, cases.calibrate, budget, DECISIVE_MARGIN, options.calibration_method, options.threads, say
    )
    say(f"building {kind.name}")
    try:
        c.built = build_variant(kind, model, model_path, tmp / target.name, ctx)
        try:
            c.session, _, c.engine_build_s = _open(
                str(c.built.path), options, cases.judge[0], kind.trt_fp16, target.parent
            )
        except OnnxBridgeError:
            raise
        except Exception as e:
            from ._graph import missing_kernel

            missing = missing_kernel(e)
            raise VariantUnavailable(
                f"{kind.name} does not load on {options.provider}: "
                + (f"ONNX Runtime has no kernel for {missing}" if missing else first_line(e)),
                "keep that op out of the variant, or try another provider",
            ) from e
        try:
            c.outputs = measure(refs, [run(c.session, f) for f in cases.judge], names, DECISIVE_MARGIN)
            c.failures = judge_accuracy(c.outputs, budget).failures
        except ValueError as e:  # an output of another shape
            c.failures = (str(e),)
    except VariantUnavailable as e:
        c.unavailable, c.session = e, None
    return c


def _time(
    fp32, candidates: list[_Candidate], reference: Any, feeds: Feeds, options: VariantOptions
) -> tuple[dict[str, LatencyStats], LatencyStats | None, list[str]]:
    """p50s of fp32, every loaded variant and (with a source) the eager model, interleaved."""
    from ..runtime.timing import ort_callable, reference_callable, time_interleaved

    gpu = is_gpu(options.provider)
    calls, syncs, notes = {}, {}, []
    for name, sess in [("fp32", fp32)] + [(c.kind.name, c.session) for c in candidates]:
        calls[name], syncs[name] = ort_callable(sess, feeds, io_binding=gpu)
    if isinstance(reference, TimedReference):
        device = "cuda" if gpu else "cpu"
        try:
            calls["eager"], syncs["eager"], _ = reference_callable(reference, feeds, device)
        except OnnxBridgeError as e:
            notes.append(f"the source's eager model was not timed on {device}: {e.message}")
    try:
        stats = time_interleaved(calls, options.timing, options.rounds, syncs)
    finally:
        if isinstance(reference, Releasable):
            reference.release()
    return stats, stats.pop("eager", None), notes


# p50 timings of two sessions in one run on a shared machine differ by a few percent at equal speed: a
# variant within this fraction of its speed rule meets it (fp16 on a CPU runs at 1.00-1.04x fp32 and
# passed and failed a 1.0x rule on consecutive runs otherwise).
TIMING_NOISE = 0.05


def _finish(
    c: _Candidate,
    stats: Mapping[str, LatencyStats],
    eager: LatencyStats | None,
    options: VariantOptions,
    fp32_size: int,
) -> VariantResult:
    """Judge, then write the variant (or not) and say why."""
    kind = c.kind
    budget = kind.budget_for(options)
    rule = kind.speed_rule(options)
    notes = kind.notes(options)
    if c.unavailable is not None:
        why = (c.unavailable.reason,) + ((f"hint: {c.unavailable.hint}",) if c.unavailable.hint else ())
        return VariantResult(
            kind=kind.name,
            status=VariantStatus.UNAVAILABLE,
            path=None,
            reasons=why,
            budget=budget.as_dict(),
            min_speedup=rule,
            notes=notes,
        )
    assert c.built is not None  # a candidate is built or unavailable
    lat, base = stats[kind.name], stats["fp32"]
    speedup = base.p50 / lat.p50 if lat.p50 > 0 else None
    reasons = []
    if c.failures:
        reasons.append(f"over the accuracy budget ({budget.describe()}): " + "; ".join(c.failures[:4]))
    if rule is not None and speedup is not None and speedup < rule * (1 - TIMING_NOISE):
        reasons.append(
            f"slower than required: {speedup:.2f}x fp32 (p50 {lat.p50:.3g} ms vs {base.p50:.3g} ms), "
            f"needs >= {rule:g}x (within {TIMING_NOISE:.0%} counts as met)"
        )
    status = (
        VariantStatus.PASSED
        if not reasons
        else (VariantStatus.FORCED if options.write_failed else VariantStatus.REFUSED)
    )
    size = file_size(c.built.path)
    details = dict(c.built.details)
    if c.engine_build_s is not None:
        details["engine_build_s"] = c.engine_build_s
    written = None
    if status is not VariantStatus.REFUSED:
        _write(kind, c.built.path, c.target)
        written = str(c.target)
    result = VariantResult(
        kind=kind.name,
        status=status,
        path=written,
        reasons=tuple(reasons),
        budget=budget.as_dict(),
        accuracy=c.outputs,
        latency=lat,
        speedup_vs_fp32=speedup,
        speedup_vs_eager=eager.p50 / lat.p50 if eager is not None and lat.p50 > 0 else None,
        min_speedup=rule,
        size_bytes=size,
        size_ratio=size / fp32_size if fp32_size else None,
        build_s=c.built.seconds,
        method=c.built.method,
        details=details,
        kept_fp32=c.built.kept,
        notes=notes,
    )
    return dataclasses.replace(result, table=kind.table(result))


def _write(kind: VariantKind, built: Path, target: Path) -> None:
    """Move a built variant into place crash-safely: an ONNX file together with its external data
    (``NAME.onnx.data``, written beside it when the variant is over 2 GB), any other file alone."""
    from ..onnxio import publish_model
    from ..publish import publish

    if kind.onnx_file:
        publish_model(built, target)
    else:
        publish({target: built})


def _load() -> tuple[float, ...]:
    try:
        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return ()
