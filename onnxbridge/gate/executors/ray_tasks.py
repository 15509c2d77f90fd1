"""``--executor ray[:ADDRESS]``: one Ray task per model, on a cluster or a local Ray instance started for the run.

Each task asks for the model's own resources (``cpus``, ``memory_gb`` in the manifest, one GPU when
its provider is ``cuda`` or ``tensorrt``). Results stream back as tasks finish. A task whose worker
died (killed, out of memory, its node lost) is submitted again, at most ``retries`` times, then
reported as an error of that model; the others finish. Ray's own retries are off (``max_retries=0``)
so that every retry is ours, bounded and shown. On Ctrl-C the tasks still running are cancelled
(they get a ``KeyboardInterrupt`` and remove their temporary folders) before the connection closes.

With an address, the project folder is shipped to the workers (Ray's ``working_dir``; files that
git ignores, ``.git``, virtualenvs and ``.onnxbridge`` stay behind) and each task runs from the copy.
Workers must have onnxbridge and the frameworks installed, at the versions of the submitting machine:
each outcome carries the versions it ran with, and the caller records no pass made with others.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Generator, Iterator, Sequence
from typing import Any

from ..._util import first_line
from ...errors import InputError, UsageError
from ...options import ExecutorOptions
from ...options.providers import is_gpu
from ..runner import Outcome, Task, run_task
from .base import Progress, cannot_run, worker_died
from .kind import ExecutorKind

__all__ = ["RayExecutor", "resources_of", "SHIP_EXCLUDES"]

SHIP_EXCLUDES = [
    ".git",
    ".venv",
    "venv",
    ".onnxbridge",
    "__pycache__",
    "*.pyc",
    ".tox",
    ".mypy_cache",
    ".pytest_cache",
    "node_modules",
]
_CANCEL_GRACE_S = 10.0
_DIED_HINT = (
    "out of memory or a crash in a framework is likely: give it more (memory_gb = ... in the manifest) "
    "or check it alone with --executor local --model NAME"
)


def resources_of(task: Task) -> dict[str, Any]:
    """The Ray resource request of one model's task."""
    entry = task.entry
    request: dict[str, Any] = {"num_cpus": entry.cpus}
    if entry.memory_gb:
        request["memory"] = int(entry.memory_gb * 2**30)
    if is_gpu(entry.provider):
        request["num_gpus"] = 1
    return request


class RayExecutor:
    """Runs each task as a Ray task; connects (or starts a local instance) for the run only."""

    def __init__(self, options: ExecutorOptions) -> None:
        self.options = options

    def run(self, tasks: Sequence[Task], say: Progress) -> Generator[Outcome, None, None]:
        ray = _import_ray()
        started = _connect(ray, self.options, say, tasks[0].root if tasks else ".")
        try:
            yield from _Run(ray, self.options, tasks, say, local=self.options.address is None)
        finally:
            if started:
                ray.shutdown()


def _import_ray():
    try:
        import ray
    except ImportError as e:
        raise UsageError(
            "--executor ray needs Ray, which is not installed here",
            "pip install 'onnxbridge[ray]' (or run with --executor local)",
        ) from e
    return ray


def _connect(ray, options: ExecutorOptions, say: Progress, root: str) -> bool:
    """Connect to the cluster (or start a local instance); False when the caller had connected already."""
    if ray.is_initialized():
        if options.shipped and not ray.get_runtime_context().runtime_env.get("working_dir"):
            raise UsageError(
                "the project must be shipped to the Ray workers, but Ray was initialised without it",
                f"call ray.init(..., runtime_env={{'working_dir': {root!r}}}) or let onnxbridge connect",
            )
        return False
    settings: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    if options.address:
        say(f"connecting to the Ray cluster at {options.address}")
        _probe(options.address)
        settings["address"] = options.address
    else:
        say("starting a local Ray instance")
        settings["num_cpus"] = options.jobs or os.cpu_count() or 1
    if options.shipped:  # a folder is uploaded once, for the job (Ray takes it at init only)
        settings["runtime_env"] = {"working_dir": root, "excludes": SHIP_EXCLUDES}
    try:
        ray.init(**settings)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"at {options.address}" if options.address else "here"
        raise InputError(
            f"cannot start or reach a Ray cluster {where}: {str(e).strip()[:300]}",
            "check the address (ray status on the head node), or run with --executor local; a project "
            "folder too large to ship: list its big files in .gitignore",
        ) from e
    return True


def _probe(address: str, timeout_s: float = 5.0) -> None:
    """Fail fast on a HOST:PORT nothing answers at (Ray itself would retry for minutes)."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host:
        return  # auto, or a form Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise InputError(
            f"nothing answers at {address} (the Ray cluster's address): {e.strerror or e}",
            "start the head node (ray start --head), check HOST:PORT (ray status on the head prints "
            "it), or run with --executor local",
        ) from e


class _Run:
    """One run's tasks in flight: submit, collect as they finish, retry the ones whose worker died."""

    def __init__(self, ray, options: ExecutorOptions, tasks: Sequence[Task], say: Progress, *, local: bool) -> None:
        self.ray, self.options, self.tasks, self.say, self.local = ray, options, tasks, say, local
        self.remote = ray.remote(max_retries=0, retry_exceptions=False)(run_remote)
        self.pending: dict[Any, tuple[Task, int]] = {}
        self.have: dict[str, float] | None = None  # the local instance's resources, read once

    def __iter__(self) -> Iterator[Outcome]:
        ray = self.ray
        self.say(f"checking {len(self.tasks)} model(s) as Ray tasks")
        try:
            for task in self.tasks:
                unfit = self._unfit(task)
                if unfit is not None:
                    yield unfit
                else:
                    self._submit(task, 1)
            while self.pending:
                ready, _ = ray.wait(list(self.pending), num_returns=1, timeout=0.5)
                for ref in ready:
                    outcome = self._collect(ref)
                    if outcome is not None:
                        yield outcome
        finally:
            self._cancel()

    def _submit(self, task: Task, attempt: int) -> None:
        request = resources_of(task)
        ref = self.remote.options(**request).remote(task, self.options.shipped)
        self.pending[ref] = (task, attempt)

    def _collect(self, ref) -> Outcome | None:
        """The outcome of a finished task, or None when it was submitted again."""
        errors = self.ray.exceptions
        task, attempt = self.pending.pop(ref)
        tries = self.options.retries + 1
        try:
            outcome = self.ray.get(ref)
        except (
            errors.WorkerCrashedError,
            errors.OutOfMemoryError,
            errors.NodeDiedError,
            errors.LocalRayletDiedError,
            errors.ObjectLostError,
        ) as e:
            what = _death(e)
            if attempt < tries:
                self.say(f"{task.entry.name}: its worker died ({what}); trying again ({attempt + 1} of {tries})")
                self._submit(task, attempt + 1)
                return None
            return worker_died(task, f"its Ray worker died {tries} time(s) ({what})", _DIED_HINT)
        except errors.RayError as e:
            return cannot_run(
                task,
                f"Ray could not run it: {first_line(e)}",
                "check that the workers have onnxbridge and the frameworks installed "
                "(pip install 'onnxbridge[all,ray]'), or run with --executor local",
            )
        if attempt > 1:
            note = f"its Ray worker died and it was run again: attempt {attempt} of {tries}"
            outcome = dataclasses.replace(
                outcome, result=dataclasses.replace(outcome.result, notes=(*outcome.result.notes, note))
            )
        return outcome

    def _unfit(self, task: Task) -> Outcome | None:
        """A model the local instance cannot run (a GPU it lacks, more CPUs or memory than it has)."""
        if not self.local:
            return None  # a cluster at an address may scale up to fit the request: Ray waits for it
        if self.have is None:
            self.have = self.ray.cluster_resources()
        have, need = self.have, resources_of(task)
        short = [
            f"{label} {need[key] if key != 'memory' else need[key] / 2**30:g}"
            for key, res, label in (
                ("num_cpus", "CPU", "CPUs"),
                ("num_gpus", "GPU", "GPUs"),
                ("memory", "memory", "GiB of memory"),
            )
            if key in need and need[key] > have.get(res, 0)
        ]
        if not short:
            return None
        return cannot_run(
            task,
            f"the local Ray instance cannot give it {', '.join(short)}",
            'lower cpus / memory_gb in the manifest, set provider = "auto" or "cpu", '
            "or run it on a cluster that has them (--executor ray:ADDRESS)",
        )

    def _cancel(self) -> None:
        """Cancel what is still running and give it a moment to clean up."""
        if not self.pending:
            return
        refs = list(self.pending)
        for ref in refs:
            try:
                self.ray.cancel(ref, force=False)
            except Exception:  # already finished or its worker gone
                pass
        try:
            self.ray.wait(refs, num_returns=len(refs), timeout=_CANCEL_GRACE_S)
        except Exception:
            pass
        self.pending.clear()


def run_remote(task: Task, shipped: bool) -> Outcome:
    """A Ray task's body: run the task (from the shipped copy of the project: ``--update``'s files then
    come back as bytes), and say with which versions."""
    from ..cache import package_versions, replay_packages, source_packages

    here = os.getcwd() if shipped else task.root
    moved = _moved(task, here)
    outcome = run_task(moved)
    names = tuple(dict.fromkeys(replay_packages() + source_packages(outcome.result.framework)))
    result = _unmoved(outcome.result, here, task.root) if here != task.root else outcome.result
    staged = outcome.staged.packed() if shipped and outcome.staged else outcome.staged  # bytes cross machines
    return dataclasses.replace(outcome, result=result, staged=staged, versions=package_versions(names))


def _moved(task: Task, root: str) -> Task:
    """The task with its project root (and its SOURCE's file) at ``root``."""
    if root == task.root:
        return task
    source = task.source
    if source.startswith(task.root + os.sep):
        source = root + source[len(task.root) :]
    return dataclasses.replace(task, root=root, source=source)


def _unmoved(result, here: str, there: str):
    """Messages that name the shipped copy name the project folder of the submitting machine instead."""
    fix = lambda text: text.replace(here, there) if text else text  # noqa: E731
    return dataclasses.replace(
        result, message=fix(result.message), hint=fix(result.hint), notes=tuple(fix(n) for n in result.notes)
    )


def _death(e: Exception) -> str:
    name = type(e).__name__
    return "out of memory" if "OutOfMemory" in name else name


KIND = ExecutorKind(
    "ray",
    RayExecutor,
    "one Ray task per model, on a cluster (ray:ADDRESS) or a local instance",
    takes_address=True,
    ships=True,
    default_jobs=0,
)
