"""``onnxbridge.bench``: speed of an ONNX model on ONNX Runtime, optionally against its source.

Orchestration only: the timing loops live in :mod:`onnxbridge.runtime.timing`. Every provider
asked for is measured, and the provider that really ran is read back from its session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._memory import StagePeaks
from .._util import Progress, no_progress
from ..errors import UsageError
from ..options import BenchConfig, ExportOptions, TimingPlan, as_path, as_specs, is_batch_axis
from ..results import BenchCase, BenchReport, BenchSettings, ReferenceCheck, Report
from ..runtime.capabilities import OnAccelerator, ThreadLimited
from ..specs import TensorSpec

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..overlays.profile import NodeProfile
    from ..parity.inputs import IdRanges
    from ..runtime.providers import ProviderChoice
    from ..runtime.sessions import Runner

    _Cases = list[tuple[int, dict[str, np.ndarray]]]  # (batch, feeds) to measure
    _Sessions = list[tuple[Any, ProviderChoice]]  # (onnxruntime session, the provider it runs on)

    from ..generation.bench import DecodeBenchConfig

__all__ = ["bench", "bench_with", "batch_axis", "decode_config"]


def bench(
    model: str | Path,
    *,
    source: str | None = None,
    inputs: Sequence[str | TensorSpec] | None = None,
    framework: str | None = None,
    trust_model: bool = False,
    providers: Sequence[str] = ("auto",),
    batches: Sequence[int] | None = None,
    axis_sizes: Mapping[str, int] | None = None,
    warmup: int = 10,
    runs: int = 100,
    duration_s: float | None = None,
    threads: int | None = None,
    opt_level: str = "all",
    io_binding: str = "auto",
    reference_device: str = "auto",
    seed: int = 0,
    inputs_file: str | Path | None = None,
    profile: bool = False,
    prompt_length: int = 128,
    new_tokens: int = 64,
    trials: int = 3,
    progress: Progress | None = None,
) -> Report:
    """Time ``model`` on each provider in ``providers`` (and SOURCE eager, when given) at each batch size.

    ``runs`` timed runs after ``warmup`` (or as many as fit in ``duration_s`` seconds); ``threads``
    sets ONNX Runtime's intra-op threads (and the source framework's); ``io_binding`` ``auto``
    binds inputs and outputs on the device for CUDA / TensorRT only. Returns a :class:`Report`
    whose ``bench`` holds every measurement and the speed-up over the source framework. ``profile``
    adds per-node time from ONNX Runtime's profiler on the first provider and input (``bench.profile``).


    ``model`` a with-past folder (``convert ... --task text-generation-with-past``): prefill latency at
    ``prompt_length`` tokens and decode tokens/s over ``new_tokens`` greedy tokens per batch size (default
    1 and 4), ``trials`` interleaved trials, against SOURCE (the Hugging Face folder) in transformers with
    its cache; the report's ``decode_bench`` holds them (docs/generation.md).
    """
    config = BenchConfig(
        providers=tuple(providers),
        batches=tuple(batches or ()),
        axis_sizes=tuple((axis_sizes or {}).items()),
        timing=TimingPlan(warmup=warmup, runs=runs, duration_s=duration_s),
        threads=threads,
        opt_level=opt_level,
        io_binding=io_binding,
        reference_device=reference_device,
        seed=seed,
        inputs_file=as_path(inputs_file),
    )
    export = ExportOptions(as_specs(inputs), framework, None, (), trust_model)
    decode = (
        decode_config(config, prompt_length=prompt_length, new_tokens=new_tokens, trials=trials)
        if Path(model).is_dir()
        else None
    )
    return bench_with(model, config, source=source, export=export, profile=profile, progress=progress, decode=decode)


def decode_config(config: BenchConfig, *, prompt_length: int, new_tokens: int, trials: int) -> DecodeBenchConfig:
    """The decode bench's settings from the bench options (batches default 1 and 4; ``--io-binding`` auto
    measures both ONNX Runtime modes, on / off one)."""
    from ..generation.bench import ORT_MODES, DecodeBenchConfig

    if len(config.providers) > 1:
        raise UsageError("a with-past folder is benched on one provider", "give one --provider")
    modes = {"on": ("io-binding",), "off": ("feeds",)}.get(config.io_binding, ORT_MODES)
    return DecodeBenchConfig(
        prompt_length,
        tuple(config.batches or (1, 4)),
        new_tokens,
        trials,
        config.threads,
        (config.providers or ("auto",))[0],
        modes,
        config.seed,
    )


def bench_with(
    model: str | Path,
    config: BenchConfig,
    *,
    source: str | None = None,
    export: ExportOptions = ExportOptions(),
    profile: bool = False,
    progress: Progress | None = None,
    decode: DecodeBenchConfig | None = None,
) -> Report:
    """:func:`bench` with its options built already; ``decode`` (with a with-past folder as ``model``):
    the decode bench instead."""
    from ..onnxio import input_specs, load_onnx
    from ..runtime.support import check_runtime_support
    from ..runtime.timing import session_options

    say = progress or no_progress
    if Path(model).is_dir():
        from ..generation.bench import bench_folder

        return bench_folder(
            model,
            decode or decode_config(config, prompt_length=128, new_tokens=64, trials=3),
            source=source,
            trust=export.trust_model,
            progress=say,
        )
    options = session_options(config.threads, config.opt_level)  # refuses a level this onnxruntime lacks
    t_all = time.perf_counter()
    timings: dict[str, float] = {}
    say(f"loading {model}")
    peaks = StagePeaks()
    with peaks.stage("load"):
        onnx_model = load_onnx(model)
        check_runtime_support(onnx_model, model)
    specs = _fit_specs(export.inputs, input_specs(onnx_model), model)
    reference, framework, int_high = None, "onnx", None
    if source is not None:
        from ._stages import load_source

        say(f"loading {source}")
        t0 = time.perf_counter()
        converter, loaded = load_source(source, dataclasses.replace(export, inputs=specs))
        timings["load_s"] = time.perf_counter() - t0
        reference, framework, int_high = converter.reference_runner(loaded), converter.framework, loaded.domain.ids
    sizes, batch_name, batches = _sizes(specs, config)
    cases = _plan_inputs(specs, sizes, batch_name, batches, config, int_high, model)
    say("starting sessions")
    with peaks.stage("bench"):
        sessions, notes = _sessions(onnx_model, model, config, options)
        measured = _measure(sessions, reference, cases, config, say)
        node_profile = _profile(onnx_model, model, config, cases[0][1], say) if profile else None
    timings["bench_s"] = time.perf_counter() - t_all
    bench_report = BenchReport(
        results=measured.results,
        reference_results=measured.reference,
        reference_parity=measured.checks,
        settings=BenchSettings(
            config.timing.warmup,
            config.timing.runs if config.timing.duration_s is None else None,
            config.timing.duration_s,
            config.threads,
            config.opt_level,
            config.io_binding,
            config.seed,
        ),
        batch_axis=batch_name,
        axis_sizes={k: v for k, v in sizes.items() if k != batch_name},
        profile=node_profile,
    )
    notes += [
        f"batch {c.batch}: the ONNX model's outputs differ from the source's on the bench inputs "
        f"(worst max_abs {c.max_abs:.3g}); run onnxbridge validate before trusting these figures"
        for c in measured.checks
        if not c.passed
    ]
    return Report(
        command="bench",
        source=source or str(model),
        framework=framework,
        output=str(model),
        bench=bench_report,
        timings=timings,
        notes=tuple(dict.fromkeys(notes)),
        peak_rss_bytes=peaks.bytes,
    )


def batch_axis(specs: Sequence[TensorSpec]) -> str | None:
    """The named dynamic axis that is the batch: a batch-like name, else the leading dynamic dim shared by all inputs."""
    for d in (d for s in specs for d in s.dims if isinstance(d, str)):
        if is_batch_axis(d):
            return d
    lead = _leading_dim(specs)
    return lead if isinstance(lead, str) else None


def _fixed_batch(specs: Sequence[TensorSpec]) -> int | None:
    lead = _leading_dim(specs)
    return lead if isinstance(lead, int) else None


def _leading_dim(specs: Sequence[TensorSpec]) -> int | str | None:
    """The first dim of the inputs, when every input has the same one."""
    leading = {s.dims[0] for s in specs if s.dims}
    return next(iter(leading)) if len(leading) == 1 else None


def _fit_specs(
    given: tuple[TensorSpec, ...], graph: tuple[TensorSpec, ...], model_path: str | Path
) -> tuple[TensorSpec, ...]:
    if not given:
        return graph
    names = {s.name for s in graph}
    unknown = [s.name for s in given if s.name not in names]
    if unknown:
        raise UsageError(
            f"--input {', '.join(unknown)}: no such input in {model_path} (inputs: {', '.join(sorted(names))})",
            "name the inputs as the ONNX graph does (onnxbridge inspect MODEL.onnx)",
        )
    by_name = {s.name: s for s in given}
    return tuple(by_name.get(s.name, s) for s in graph)


def _sizes(specs: Sequence[TensorSpec], config: BenchConfig) -> tuple[dict[str, int], str | None, tuple[int, ...]]:
    """(size of every dynamic axis, the batch axis, the batch sizes to measure) after ``--axis`` / ``--batch``."""
    from ..converters.base import axis_sizes as default_sizes

    sizes = default_sizes(specs)
    for axis, size in config.axis_sizes:
        if axis not in sizes:
            raise UsageError(
                f"--axis {axis}={size}: the model has no dynamic axis {axis!r} "
                f"(dynamic axes: {', '.join(sorted(sizes)) or 'none'})",
                "name a dynamic axis of the inputs, or use --input to fix the shape",
            )
        sizes[axis] = size
    batch_name = batch_axis(specs)
    batches = config.batches
    if batch_name in config.axes:  # --axis batch=N: the batch to measure, as --batch N
        if batches:
            raise UsageError(
                f"--axis {batch_name}={sizes[batch_name]} and --batch both set the batch size",
                f"leave out --axis {batch_name}=...; --batch takes the batch sizes to sweep",
            )
        batches = (sizes[batch_name],)
    return sizes, batch_name, batches


def _plan_inputs(
    specs: tuple[TensorSpec, ...],
    sizes: dict[str, int],
    batch_name: str | None,
    batches: tuple[int, ...],
    config: BenchConfig,
    int_high: IdRanges | None,
    model: str | Path,
) -> _Cases:
    """[(batch, feeds)] to measure: one per batch size asked for, or the --inputs data."""
    from ..parity.inputs import generate_inputs

    seed = config.seed
    if config.inputs_file:
        from ..parity.fixtures import load_cases

        label, feeds = load_cases(config.inputs_file)[0]
        missing = [s.name for s in specs if s.name not in feeds]
        if missing:
            raise UsageError(
                f"--inputs {config.inputs_file} has no array for {', '.join(missing)}",
                "write it with --save-inputs from a run on the same model",
            )
        feeds = {s.name: feeds[s.name] for s in specs}
        first = next(iter(feeds.values()), None)
        return [(int(first.shape[0]) if first is not None and first.ndim else 1, feeds)]
    if not batches:  # latency at batch 1 where the batch is dynamic, else the model's fixed batch
        if batch_name:
            return [(1, generate_inputs(specs, {**sizes, batch_name: 1}, seed, int_high=int_high))]
        return [(_fixed_batch(specs) or 1, generate_inputs(specs, sizes, seed, int_high=int_high))]
    out: _Cases = []
    for b in batches:
        if batch_name is None:
            fixed = _fixed_batch(specs)
            if fixed != b:
                raise UsageError(
                    f"--batch {b}: {model} has no dynamic batch axis"
                    + (f" (its batch is fixed to {fixed})" if fixed is not None else ""),
                    "export the model with a dynamic batch (--input NAME:batch,...) or leave out --batch",
                )
            out.append((b, generate_inputs(specs, sizes, seed, int_high=int_high)))
        else:
            out.append((b, generate_inputs(specs, {**sizes, batch_name: b}, seed, int_high=int_high)))
    return out


def _sessions(
    onnx_model: onnx.ModelProto, path: str | Path, config: BenchConfig, options: Any
) -> tuple[_Sessions, list[str]]:
    """One session per provider asked for, with the provider that really runs read back."""
    from ..onnxio import session_payload
    from ..runtime.providers import create_session

    payload = session_payload(onnx_model, path)
    sessions: _Sessions = []
    notes: list[str] = []
    for p in config.providers:
        session, choice = create_session(payload, p, options=options)
        if choice.note:
            notes.append(choice.note)
        sessions.append((session, choice))
    return sessions, notes


def _profile(
    onnx_model: onnx.ModelProto, path: str | Path, config: BenchConfig, feeds: dict[str, np.ndarray], say: Progress
) -> NodeProfile:
    """Per-node time on the first provider asked for, at the first batch (a session of its own)."""
    from ..onnxio import session_payload
    from ..overlays.profile import profile_session
    from ..runtime.timing import session_options

    say(f"profiling nodes on {config.providers[0]}")
    return profile_session(
        session_payload(onnx_model, path), feeds, config.providers[0], session_options(config.threads, config.opt_level)
    )


@dataclasses.dataclass
class _Measured:
    results: tuple[BenchCase, ...] = ()
    reference: tuple[BenchCase, ...] = ()
    checks: tuple[ReferenceCheck, ...] = ()


def _measure(
    sessions: _Sessions, reference: Runner | None, cases: _Cases, config: BenchConfig, say: Progress
) -> _Measured:
    """Time every session (and the reference) at every batch; check the reference against the first session."""
    device = config.reference_device
    if device == "auto":
        accelerator = reference.accelerator() if isinstance(reference, OnAccelerator) else None
        device = "cuda" if sessions[0][1].provider.is_gpu and accelerator == "cuda" else "cpu"
    results, refs, checks = [], [], []
    with reference.threads(config.threads) if isinstance(reference, ThreadLimited) else contextlib.nullcontext():
        for batch, feeds in cases:
            shapes = {k: tuple(int(x) for x in v.shape) for k, v in feeds.items()}
            ref = None
            if reference is not None:
                say(f"{reference.name} batch {batch}")
                ref = _time_reference(reference, feeds, batch, shapes, device, config.timing)
                refs.append(ref)
                checks.append(_outputs_match(reference, sessions[0][0], feeds, batch))
            for session, choice in sessions:
                binding = config.io_binding == "on" or (config.io_binding == "auto" and choice.provider.is_gpu)
                say(f"{choice.used} batch {batch}")
                row = _time_ort(session, choice, feeds, batch, shapes, binding, config)
                if ref is not None and row.stats.p50 > 0:
                    row = dataclasses.replace(row, speedup_vs_reference=ref.stats.p50 / row.stats.p50)
                results.append(row)
    return _Measured(tuple(results), tuple(refs), tuple(checks))


def _time_ort(
    session: Any,
    choice: ProviderChoice,
    feeds: dict[str, np.ndarray],
    batch: int,
    shapes: dict[str, tuple[int, ...]],
    binding: bool,
    config: BenchConfig,
) -> BenchCase:
    from ..runtime.timing import ort_callable, time_callable

    call, sync = ort_callable(session, feeds, io_binding=binding)
    stats = time_callable(call, config.timing, sync)
    return BenchCase(
        runtime="onnxruntime",
        provider_requested=choice.requested,
        provider_used=choice.used,
        batch=batch,
        shapes=shapes,
        io_binding=binding,
        stats=stats,
        settings={"intra_op_threads": config.threads, "graph_optimization_level": config.opt_level},
        note=choice.note,
    )


def _time_reference(
    reference: Runner,
    feeds: dict[str, np.ndarray],
    batch: int,
    shapes: dict[str, tuple[int, ...]],
    device: str,
    plan: TimingPlan,
) -> BenchCase:
    from ..runtime.timing import time_reference

    stats, name = time_reference(reference, feeds, device, plan)
    return BenchCase(
        runtime=reference.name,
        provider_requested=None,
        provider_used=name,
        batch=batch,
        shapes=shapes,
        io_binding=False,
        stats=stats,
        settings={"device": device},
    )


def _outputs_match(reference: Runner, session: Any, feeds: dict[str, np.ndarray], batch: int) -> ReferenceCheck:
    """One run of each side on the bench inputs: a speed figure of a wrong model is worth nothing."""
    from ..parity.metrics import compare_outputs

    names = {i.name for i in session.get_inputs()}
    refs = reference.run(dict(feeds))
    gots = session.run(None, {k: v for k, v in feeds.items() if k in names})
    out_names = tuple(o.name for o in session.get_outputs())
    if len(refs) != len(gots):
        return ReferenceCheck(batch, False, float("inf"), f"output count differs: {len(refs)} vs {len(gots)}")
    outs = compare_outputs(out_names, refs, gots, None)
    return ReferenceCheck(batch, all(o.passed for o in outs), max((o.max_abs for o in outs), default=0.0))
