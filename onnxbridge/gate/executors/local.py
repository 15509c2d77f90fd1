"""The default executor: this process (one job), or a pool of spawned worker processes."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import tempfile
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path

from ...options import ExecutorOptions
from ..runner import Outcome, Task, run_task
from .base import Progress, worker_died
from .kind import ExecutorKind

__all__ = ["LocalExecutor", "KIND"]


class LocalExecutor:
    """``--executor local --jobs N``: N worker processes (0: one per CPU); one job runs here.

    A worker process that dies (killed, out of memory, a crash in a framework) breaks the whole pool:
    the models not yet started go to a fresh pool; those that were running (the one that killed it,
    and any beside it) are run again alone, up to ``retries`` times, so a death is the model's own.
    """

    def __init__(self, options: ExecutorOptions) -> None:
        self.jobs = 1 if options.jobs is None else options.jobs
        self.tries = options.retries + 1

    def run(self, tasks: Sequence[Task], say: Progress) -> Generator[Outcome, None, None]:
        workers = min(self.jobs or os.cpu_count() or 1, len(tasks))
        if workers <= 1:
            for task in tasks:
                say(f"checking {task.entry.name} ({task.mode}: {'; '.join(task.reasons)})")
                yield run_task(task)
            return
        say(f"checking {len(tasks)} model(s) in {workers} processes")
        marks = Path(tempfile.mkdtemp(prefix="onnxbridge-started-"))
        try:
            yield from _Pools(tasks, self.tries, marks, say).run(workers)
        finally:
            shutil.rmtree(marks, ignore_errors=True)


class _Pools:
    """The tasks over pools of spawned workers; a task marks a file when a worker starts it."""

    def __init__(self, tasks: Sequence[Task], tries: int, marks: Path, say: Progress) -> None:
        self.tasks, self.tries, self.marks, self.say = tasks, tries, marks, say
        self.attempts = dict.fromkeys(range(len(tasks)), 1)

    def run(self, workers: int) -> Iterator[Outcome]:
        pending, suspects = list(range(len(self.tasks))), []
        while pending:
            died, pending = yield from self._round(pending, workers)
            if pending and not died:  # the pool broke before any worker started a task: nothing will run
                for i in pending:
                    yield worker_died(self.tasks[i], "the worker processes could not start", _HINT)
                return
            suspects += died
        for i in suspects:  # alone now: a worker that dies again died of this model
            name = self.tasks[i].entry.name
            while True:
                if self.attempts[i] >= self.tries:
                    yield worker_died(self.tasks[i], f"the worker process checking it died {self.tries} time(s)", _HINT)
                    break
                self.attempts[i] += 1
                self.say(f"{name}: its worker process died; trying again alone ({self.attempts[i]} of {self.tries})")
                died, _ = yield from self._round([i], 1)
                if not died:
                    break

    def _round(self, indices: list[int], workers: int):
        """Run ``indices`` in one pool, yielding their outcomes; returns (the tasks running when the pool
        broke, the tasks it had not started), both empty when it did not break."""
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures.process import BrokenProcessPool

        before = set(multiprocessing.active_children())  # the pool's workers are the children it adds
        # spawn, not fork: workers import torch / tensorflow, which are not fork-safe
        pool = ProcessPoolExecutor(
            max_workers=min(workers, len(indices)), mp_context=multiprocessing.get_context("spawn")
        )
        futures: dict = {}
        died: list[int] = []
        not_started: list[int] = []
        try:
            futures = {pool.submit(_run_marked, self.tasks[i], str(self.marks / str(i))): i for i in indices}
            for future in as_completed(futures):
                i = futures[future]
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    mark = self.marks / str(i)
                    (died if mark.exists() else not_started).append(i)
                    mark.unlink(missing_ok=True)
                    continue
                yield self._noted(i, outcome)
        except BaseException:  # Ctrl-C, or the caller stopped early: cancel the rest
            _stop(pool, futures, before)
            raise
        pool.shutdown(wait=True)
        return sorted(died), sorted(not_started)

    def _noted(self, i: int, outcome: Outcome) -> Outcome:
        if self.attempts[i] == 1:
            return outcome
        note = (
            f"a worker process died while it ran and it was run again alone: attempt {self.attempts[i]} of {self.tries}"
        )
        return dataclasses.replace(
            outcome, result=dataclasses.replace(outcome.result, notes=(*outcome.result.notes, note))
        )


_HINT = "rerun with --jobs 1; a crash in a framework or out of memory is likely"


def _run_marked(task: Task, mark: str) -> Outcome:
    """In a worker: note that this task started, then run it."""
    Path(mark).touch()
    return run_task(task)


def _stop(pool, futures, before: set, grace_s: float = 10.0) -> None:
    """Drop the tasks not started, Ctrl-C the workers (they clean up), and end any that linger. The
    workers are this process's children that were not there before the pool (``multiprocessing``'s
    public view of them; the pool's own table is private)."""
    import multiprocessing
    import time

    processes = [p for p in multiprocessing.active_children() if p not in before]
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


KIND = ExecutorKind("local", LocalExecutor, "this process, or --jobs N spawned worker processes")
