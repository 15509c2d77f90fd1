"""Timing loops and latency statistics, measured the way onnxruntime_perf_test does it.

Warm-up runs first, then a fixed number of runs or a time budget; each run is timed on its own
with ``time.perf_counter`` and nothing else inside the timed region but the call (and, on a GPU,
the device synchronisation that makes the call's time real). The loop is the same for ONNX
Runtime and for the source framework, so their ratio compares like with like.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import UsageError
from ..options import OPT_LEVELS, TimingPlan
from ..results import LatencyStats

__all__ = [
    "OPT_LEVELS",
    "TimingPlan",
    "LatencyStats",
    "summarize",
    "time_callable",
    "time_interleaved",
    "session_options",
    "ort_callable",
    "reference_callable",
    "time_reference",
]


Call = Callable[[], Any]


def summarize(times_s: Sequence[float]) -> LatencyStats:
    """Percentiles (linear interpolation), mean and sample standard deviation of per-run times."""
    if not len(times_s):
        raise ValueError("no timed runs to summarise")
    ms = np.asarray(times_s, dtype=np.float64) * 1000.0
    p50, p90, p99 = (float(x) for x in np.percentile(ms, [50, 90, 99]))
    return LatencyStats(
        runs=int(ms.size),
        total_s=float(ms.sum() / 1000.0),
        p50=p50,
        p90=p90,
        p99=p99,
        mean=float(ms.mean()),
        stdev=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
        min=float(ms.min()),
        max=float(ms.max()),
    )


def time_callable(fn: Call, plan: TimingPlan, sync: Call | None = None) -> LatencyStats:
    """Warm ``fn`` up, then time each call; ``sync`` (a device synchronisation) is inside the timed region."""
    for _ in range(plan.warmup):
        fn()
    if sync is not None:
        sync()
    clock = time.perf_counter
    times: list[float] = []
    append = times.append
    if plan.duration_s is None:
        if sync is None:
            for _ in range(plan.runs):
                t0 = clock()
                fn()
                append(clock() - t0)
        else:
            for _ in range(plan.runs):
                t0 = clock()
                fn()
                sync()
                append(clock() - t0)
        return summarize(times)
    end = clock() + plan.duration_s
    while True:
        t0 = clock()
        fn()
        if sync is not None:
            sync()
        t1 = clock()
        append(t1 - t0)
        if t1 >= end and len(times) >= plan.min_runs:
            break
    return summarize(times)


def time_interleaved(
    calls: Mapping[str, Call], plan: TimingPlan, rounds: int = 3, syncs: Mapping[str, Call | None] | None = None
) -> dict[str, LatencyStats]:
    """Time several calls against each other: each warms up, then ``rounds`` rounds run every call
    ``plan.runs`` times in turn (A A A B B B A A A ...), so a load spike on a shared machine hits them
    all alike. The per-run times of every round are pooled per call."""
    syncs = syncs or {}
    for name, fn in calls.items():
        for _ in range(plan.warmup):
            fn()
        sync = syncs.get(name)
        if sync is not None:
            sync()
    clock = time.perf_counter
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            sync, append = syncs.get(name), times[name].append
            for _ in range(plan.runs):
                t0 = clock()
                fn()
                if sync is not None:
                    sync()
                append(clock() - t0)
    return {name: summarize(ts) for name, ts in times.items()}


# ------------------------------------------------------------------ ONNX Runtime


def session_options(threads: int | None = None, opt_level: str = "all") -> Any:
    """``SessionOptions`` with intra-op threads (None: onnxruntime's default) and a graph optimisation level."""
    import onnxruntime as ort

    if opt_level not in OPT_LEVELS:
        raise UsageError(f"unknown optimisation level {opt_level!r}", f"use one of {', '.join(OPT_LEVELS)}")
    if threads is not None and threads < 1:
        raise UsageError(f"--threads {threads} must be at least 1", "give a positive thread count, or leave it out")
    level = {
        "disable": "ORT_DISABLE_ALL",
        "basic": "ORT_ENABLE_BASIC",
        "extended": "ORT_ENABLE_EXTENDED",
        "layout": "ORT_ENABLE_LAYOUT",
        "all": "ORT_ENABLE_ALL",
    }[opt_level]
    if not hasattr(ort.GraphOptimizationLevel, level):  # ORT_ENABLE_LAYOUT is recent
        raise UsageError(
            f"optimisation level {opt_level!r} needs a newer onnxruntime than {ort.__version__}",
            "use --opt-level extended or all, or upgrade onnxruntime",
        )
    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    if threads is not None:
        so.intra_op_num_threads = threads
    so.log_severity_level = 3
    return so


def ort_callable(session: Any, feeds: Mapping[str, np.ndarray], *, io_binding: bool) -> tuple[Call, Call | None]:
    """A zero-argument call running ``session`` on ``feeds``, and the synchronisation to time with it.

    Without IO binding, ``session.run`` takes host arrays and returns host arrays (on a GPU the
    copies are part of the time, and the copy back synchronises). With IO binding the inputs are
    copied to the device once, outputs stay on the device, and ``synchronize_outputs`` waits for
    the device so that nothing is timed short.
    """
    names = {i.name for i in session.get_inputs()}
    feeds = {k: v for k, v in feeds.items() if k in names}
    if not io_binding:
        run = session.run
        return (lambda: run(None, feeds)), None
    import onnxruntime as ort

    from ..options.providers import Provider

    device = Provider.from_ort(session.get_providers()[0]).device
    binding = session.io_binding()
    keep = []  # device copies must outlive the binding
    for name, arr in feeds.items():
        value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(arr), device, 0)
        keep.append(value)
        binding.bind_ortvalue_input(name, value)
    for out in session.get_outputs():
        binding.bind_output(out.name, device, 0)
    run_binding = session.run_with_iobinding

    def call() -> None:
        run_binding(binding)

    call.keep = keep  # type: ignore[attr-defined]
    call.binding = binding  # type: ignore[attr-defined]  # for reading the outputs back
    return call, (binding.synchronize_outputs if device == "cuda" else None)


# ------------------------------------------------------------------ source framework


def reference_callable(
    runner: Any, feeds: Mapping[str, np.ndarray], device: str = "cpu"
) -> tuple[Call, Call | None, str]:
    """(call, sync, description) running the source framework's eager model on ``feeds``.

    A runner that prepares its own timed call (``timed_call(feeds, device)``: inputs moved to the
    device once, the framework called directly) is asked for it; any other runner is called through
    ``run`` on the CPU.
    """
    from .capabilities import TimedReference

    if isinstance(runner, TimedReference):
        return runner.timed_call(feeds, device)
    if device != "cpu":
        raise UsageError(
            f"the {runner.name} reference can only be benchmarked on cpu here", "use --reference-device cpu"
        )
    feeds = dict(feeds)
    return (lambda: runner.run(feeds)), None, f"{runner.name} (eager, cpu)"


def time_reference(
    runner: Any, feeds: Mapping[str, np.ndarray], device: str, plan: TimingPlan
) -> tuple[LatencyStats, str]:
    """Time the source framework's eager model on ``device`` (see :func:`reference_callable`).

    Afterwards the runner undoes what its timed call changed (``release``): a PyTorch module timed on
    another device goes back to the CPU, where the runner's own ``run`` feeds it.
    """
    try:
        call, sync, name = reference_callable(runner, feeds, device)
        return time_callable(call, plan, sync), name
    finally:
        from .capabilities import Releasable

        if isinstance(runner, Releasable):
            runner.release()
