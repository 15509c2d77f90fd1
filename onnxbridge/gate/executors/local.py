"""The default executor: this process (one job), or a pool of spawned worker processes."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence

from ...options import ExecutorOptions
from ..runner import Outcome, Task, run_task
from .base import Progress, worker_died

__all__ = ["LocalExecutor"]


class LocalExecutor:
    """``--executor local --jobs N``: N worker processes (0: one per CPU); one job runs here."""

    def __init__(self, options: ExecutorOptions) -> None:
        self.jobs = 1 if options.jobs is None else options.jobs

    def run(self, tasks: Sequence[Task], say: Progress) -> Iterator[Outcome]:
        workers = min(self.jobs or os.cpu_count() or 1, len(tasks))
        if workers <= 1:
            for task in tasks:
                say(f"checking {task.entry.name} ({task.mode}: {'; '.join(task.reasons)})")
                yield run_task(task)
            return
        yield from _pool(tasks, workers, say)


def _pool(tasks: Sequence[Task], workers: int, say: Progress) -> Iterator[Outcome]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    say(f"checking {len(tasks)} model(s) in {workers} processes")
    # spawn, not fork: workers import torch / tensorflow, which are not fork-safe
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    futures: dict = {}
    try:
        futures = {pool.submit(run_task, t): t for t in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                outcome = future.result()
            except BrokenProcessPool as e:
                outcome = worker_died(task, f"the worker process checking it died ({e})",
                                      "rerun with --jobs 1; a crash in a framework or out of memory is likely")
            yield outcome
    except BaseException:  # Ctrl-C, or the caller stopped early: cancel the rest
        _stop(pool, futures)
        raise
    pool.shutdown(wait=True)


def _stop(pool, futures, grace_s: float = 10.0) -> None:
    """Drop the tasks not started, Ctrl-C the workers (they clean up), and end any that linger."""
    import time

    processes = list((getattr(pool, "_processes", None) or {}).values())
    for future in futures:
        future.cancel()
    for process in processes:
        if process.pid and process.is_alive():
            try:
                os.kill(process.pid, signal.SIGINT)
            except OSError:
                pass
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace_s
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.terminate()
