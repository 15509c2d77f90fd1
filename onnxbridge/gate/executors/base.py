"""What every executor shares: the protocol, the progress callback, and the outcome of a worker that died."""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Protocol

from ...errors import EXIT_INTERNAL, EXIT_USAGE
from ..results import GateStatus, ModelResult
from ..runner import Outcome, Task

__all__ = ["Executor", "Progress", "worker_died", "cannot_run"]

Progress = Callable[[str], None]


class Executor(Protocol):
    """Runs tasks somewhere and yields each one's outcome as it finishes."""

    def run(self, tasks: Sequence[Task], say: Progress) -> Generator[Outcome, None, None]:
        """A generator: the gate closes it when it stops early, and the executor cleans up there."""
        ...


def worker_died(task: Task, what: str, hint: str) -> Outcome:
    """The outcome of a model whose worker died under it: an error of that model only (exit 4)."""
    return _error(task, what, hint, EXIT_INTERNAL)


def cannot_run(task: Task, what: str, hint: str) -> Outcome:
    """The outcome of a model the executor cannot run as set up (a resource it lacks, no onnxbridge there): exit 2."""
    return _error(task, what, hint, EXIT_USAGE)


def _error(task: Task, what: str, hint: str, exit_code: int) -> Outcome:
    return Outcome(
        ModelResult(
            name=task.entry.name,
            status=GateStatus.ERROR,
            location=task.location,
            onnx=task.entry.onnx,
            source=task.entry.source,
            reasons=task.reasons,
            exit_code=exit_code,
            message=what,
            hint=hint,
        )
    )
