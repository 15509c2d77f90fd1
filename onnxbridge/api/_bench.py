"""``onnxbridge.bench``: speed of an ONNX model on ONNX Runtime, optionally against its source.

Orchestration only: the timing loops live in :mod:`onnxbridge.runtime.timing`. Every provider
asked for is measured, and the provider that really ran is read back from its session.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..results import Report
from ..specs import TensorSpec

__all__ = ["bench", "batch_axis", "BATCH_AXES"]

BATCH_AXES = ("batch", "batch_size", "n", "b", "bs", "N")
IO_BINDING = ("auto", "on", "off")
REFERENCE_DEVICES = ("auto", "cpu", "cuda")


def _noop(_: str) -> None:
    return None


def batch_axis(specs: Sequence[TensorSpec]) -> str | None:
    """The named dynamic axis that is the batch: a batch-like name, else the leading dynamic dim shared by all inputs."""
    names = {a.lower() for a in BATCH_AXES}
    for d in (d for s in specs for d in s.dims if isinstance(d, str)):
        if d.lower() in names:
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


def _check_args(providers, batches, io_binding, reference_device, axis_sizes) -> tuple[str, ...]:
    from ..runtime.providers import PROVIDERS

    provs = tuple(p.strip().lower() for p in providers if p and p.strip())
    if not provs:
        raise UsageError("no provider to benchmark", "pass --provider cpu (or auto, cuda, tensorrt)")
    for p in provs:
        if p not in PROVIDERS:
            raise UsageError(f"unknown provider {p!r}", f"use one of {', '.join(PROVIDERS)}")
    for b in batches or ():
        if not isinstance(b, int) or b < 1:
            raise UsageError(f"batch size {b!r} must be a positive integer", "e.g. --batch 1,8")
    if io_binding not in IO_BINDING:
        raise UsageError(f"unknown --io-binding {io_binding!r}", f"use one of {', '.join(IO_BINDING)}")
    if reference_device not in REFERENCE_DEVICES:
        raise UsageError(f"unknown --reference-device {reference_device!r}", f"use one of {', '.join(REFERENCE_DEVICES)}")
    for axis, size in (axis_sizes or {}).items():
        if not isinstance(size, int) or size < 1:
            raise UsageError(f"axis size {axis}={size!r} must be a positive integer", "e.g. --axis seq=128")
    return tuple(dict.fromkeys(provs))


def _fit_specs(given: tuple[TensorSpec, ...], graph: tuple[TensorSpec, ...], model_path) -> tuple[TensorSpec, ...]:
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


def bench(
    model: str | Path,
    *,
    source: str | None = None,
    inputs: Sequence[str | TensorSpec] | None = None,
    framework: str | None = None,
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
    trust_model: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Time ``model`` on each provider in ``providers`` (and SOURCE eager, when given) at each batch size.

    ``runs`` timed runs after ``warmup`` (or as many as fit in ``duration_s`` seconds); ``threads``
    sets ONNX Runtime's intra-op threads (and torch's, for the reference); ``io_binding`` ``auto``
    binds inputs and outputs on the device for CUDA / TensorRT only. Returns a :class:`Report`
    whose ``bench`` holds every measurement and the speed-up over the source framework.
    """
    from ._convert import _specs, load_source
    from ..onnxio import input_specs, load_onnx
    from ..converters.base import axis_sizes as default_sizes
    from ..runtime.providers import create_session
    from ..runtime.timing import TimingPlan, session_options

    say = progress or _noop
    plan = TimingPlan(warmup=warmup, runs=runs, duration_s=duration_s).check()
    provs = _check_args(providers, batches, io_binding, reference_device, axis_sizes)
    options = session_options(threads, opt_level)  # validates threads and opt_level
    if inputs_file and batches:
        raise UsageError("--batch cannot sweep real inputs from --inputs", "leave out --batch, or leave out --inputs")
    t_all = time.perf_counter()
    timings: dict[str, float] = {}

    say(f"loading {model}")
    onnx_model = load_onnx(model)
    specs = _fit_specs(_specs(inputs), input_specs(onnx_model), model)
    notes: list[str] = []

    reference = None
    framework_used = "onnx"
    int_high = None
    if source is not None:
        say(f"loading {source}")
        t0 = time.perf_counter()
        converter, loaded = load_source(source, inputs=specs, framework=framework, trust_model=trust_model)
        timings["load_s"] = time.perf_counter() - t0
        reference = converter.reference_runner(loaded)
        framework_used, int_high = converter.framework, loaded.int_high

    sizes = default_sizes(specs)
    for axis, size in (axis_sizes or {}).items():
        if axis not in sizes:
            raise UsageError(
                f"--axis {axis}={size}: the model has no dynamic axis {axis!r} "
                f"(dynamic axes: {', '.join(sorted(sizes)) or 'none'})",
                "name a dynamic axis of the inputs, or use --input to fix the shape",
            )
        sizes[axis] = size
    batch_name = batch_axis(specs)
    if batch_name in (axis_sizes or {}):  # --axis batch=N: the batch to measure, as --batch N
        if batches:
            raise UsageError(f"--axis {batch_name}={sizes[batch_name]} and --batch both set the batch size",
                             f"leave out --axis {batch_name}=...; --batch takes the batch sizes to sweep")
        batches = [sizes[batch_name]]
    cases = _plan_inputs(specs, sizes, batch_name, batches, seed, int_high, inputs_file, model)

    say("starting sessions")
    payload = onnx_model.SerializeToString() if onnx_model.ByteSize() < 2**31 - 1 else str(model)
    sessions = []
    for p in provs:
        session, choice = create_session(payload, p, options=options)
        if choice.note:
            notes.append(choice.note)
        sessions.append((p, session, choice))

    ref_device = reference_device
    if ref_device == "auto":
        accelerator = getattr(reference, "accelerator", lambda: None)()
        ref_device = "cuda" if sessions[0][2].used != "CPUExecutionProvider" and accelerator == "cuda" else "cpu"

    results, ref_results, parity = [], [], []
    threads_for = getattr(reference, "threads", None)
    with threads_for(threads) if threads_for is not None else contextlib.nullcontext():
        for batch, feeds in cases:
            shapes = {k: tuple(int(x) for x in v.shape) for k, v in feeds.items()}
            for p, session, choice in sessions:
                binding = io_binding == "on" or (io_binding == "auto" and choice.used != "CPUExecutionProvider")
                say(f"{choice.used} batch {batch}")
                results.append(_time_ort(session, choice, feeds, batch, shapes, binding, plan, threads, opt_level))
            if reference is not None:
                say(f"{reference.name} batch {batch}")
                ref_results.append(_time_reference(reference, feeds, batch, shapes, ref_device, plan))
                parity.append(_outputs_match(reference, sessions[0][1], feeds, batch))
    timings["bench_s"] = time.perf_counter() - t_all
    for check in parity:
        if not check["passed"]:
            notes.append(
                f"batch {check['batch']}: the ONNX model's outputs differ from the source's on the bench inputs "
                f"(worst max_abs {check['max_abs']:.3g}); run onnxbridge validate before trusting these figures"
            )
    bench_dict = _bench_dict(results, ref_results, parity, plan, threads, opt_level, io_binding, seed, batch_name,
                             sizes)
    return Report(
        command="bench",
        source=source or str(model),
        framework=framework_used,
        output=str(model),
        bench=bench_dict,
        timings=timings,
        notes=tuple(dict.fromkeys(notes)),
    )


def _plan_inputs(specs, sizes, batch_name, batches, seed, int_high, inputs_file, model):
    """[(batch, feeds)] to measure: one per batch size asked for, or the --inputs data."""
    from ..parity.inputs import generate_inputs

    if inputs_file:
        from ..parity.fixtures import load_cases

        label, feeds = load_cases(inputs_file)[0]
        missing = [s.name for s in specs if s.name not in feeds]
        if missing:
            raise UsageError(f"--inputs {inputs_file} has no array for {', '.join(missing)}",
                             "write it with --save-inputs from a run on the same model")
        feeds = {s.name: feeds[s.name] for s in specs}
        first = next(iter(feeds.values()), None)
        return [(int(first.shape[0]) if first is not None and first.ndim else 1, feeds)]
    if not batches:  # latency at batch 1 where the batch is dynamic, else the model's fixed batch
        if batch_name:
            return [(1, generate_inputs(specs, {**sizes, batch_name: 1}, seed, int_high=int_high))]
        return [(_fixed_batch(specs) or 1, generate_inputs(specs, sizes, seed, int_high=int_high))]
    out = []
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


def _time_ort(session, choice, feeds, batch, shapes, binding, plan, threads, opt_level):
    from ..runtime.timing import BenchCase, ort_callable, time_callable

    call, sync = ort_callable(session, feeds, io_binding=binding)
    stats = time_callable(call, plan, sync)
    return BenchCase(
        runtime="onnxruntime",
        provider_requested=choice.requested,
        provider_used=choice.used,
        batch=batch,
        shapes=shapes,
        io_binding=binding,
        stats=stats,
        settings={"intra_op_threads": threads, "graph_optimization_level": opt_level},
        note=choice.note,
    )


def _time_reference(reference, feeds, batch, shapes, device, plan):
    from ..runtime.timing import BenchCase, time_reference

    stats, name = time_reference(reference, feeds, device, plan)
    return BenchCase(runtime=reference.name, provider_requested=None, provider_used=name, batch=batch, shapes=shapes,
                     io_binding=False, stats=stats, settings={"device": device})


def _outputs_match(reference, session, feeds, batch) -> dict[str, Any]:
    """One run of each side on the bench inputs: a speed figure of a wrong model is worth nothing."""
    from ..parity.metrics import compare_outputs

    names = {i.name for i in session.get_inputs()}
    refs = reference.run(dict(feeds))
    gots = session.run(None, {k: v for k, v in feeds.items() if k in names})
    out_names = tuple(o.name for o in session.get_outputs())
    if len(refs) != len(gots):
        return {"batch": batch, "passed": False, "max_abs": float("inf"),
                "error": f"output count differs: {len(refs)} vs {len(gots)}"}
    outs = compare_outputs(out_names, refs, gots, None)
    return {"batch": batch, "passed": all(o.passed for o in outs), "max_abs": max((o.max_abs for o in outs), default=0.0)}


def _bench_dict(results, ref_results, parity, plan, threads, opt_level, io_binding, seed, batch_name, sizes):
    """The report's ``bench`` object: the headline figures of the first measurement, then all of them."""
    ref_by_batch = {r.batch: r for r in ref_results}
    rows = []
    for r in results:
        row = r.to_dict()
        ref = ref_by_batch.get(r.batch)
        row["speedup_vs_reference"] = (ref.stats.p50 / r.stats.p50) if ref and r.stats.p50 > 0 else None
        rows.append(row)
    head = rows[0]
    head_ref = ref_by_batch.get(results[0].batch)
    return {
        "provider": head["provider_used"],
        "providers": list(dict.fromkeys(r.provider_used for r in results)),
        "batch": head["batch"],
        "shapes": head["shapes"],
        "latency_ms": head["latency_ms"],
        "throughput_per_s": head["throughput_per_s"],
        "reference": head_ref.provider_used if head_ref else None,
        "reference_latency_ms": head_ref.stats.latency_ms() if head_ref else None,
        "reference_throughput_per_s": head_ref.throughput_per_s if head_ref else None,
        "speedup_vs_reference": head["speedup_vs_reference"],
        "speedup_basis": "reference p50 / onnxruntime p50",
        "batch_axis": batch_name,
        "axis_sizes": {k: v for k, v in sizes.items() if k != batch_name},
        "settings": {
            "warmup": plan.warmup, "runs": plan.runs if plan.duration_s is None else None,
            "duration_s": plan.duration_s, "intra_op_threads": threads, "graph_optimization_level": opt_level,
            "io_binding": io_binding, "seed": seed,
        },
        "results": rows,
        "reference_results": [r.to_dict() for r in ref_results],
        "reference_parity": parity,
    }
