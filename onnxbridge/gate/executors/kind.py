"""An executor kind as one declaration, and the explicit registry ``check --executor`` looks names up in.

Adding an executor is one module in ``gate/executors/`` with a class that has ``run(tasks, say)``
(the :class:`~onnxbridge.gate.executors.base.Executor` protocol) and ``KIND = ExecutorKind(...)``, plus
one ``EXECUTORS.register`` line in ``gate/executors/registry.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from ...errors import UsageError
from ...options import ExecutorOptions
from .base import Executor

__all__ = ["ExecutorKind", "ExecutorKinds"]


@dataclass(frozen=True)
class ExecutorKind:
    """``make(options)`` builds the executor from the options it owns; ``takes_address``: ``NAME:ADDRESS``
    names where it runs; ``ships``: it can send the project folder (``ship``); ``default_jobs`` is what the
    report states when ``--jobs`` is not given (0: the cluster decides)."""

    name: str
    make: Callable[[ExecutorOptions], Executor]
    summary: str
    takes_address: bool = False
    ships: bool = False
    default_jobs: int = 1

    def check(self, options: ExecutorOptions, kinds: ExecutorKinds) -> None:
        """Refuse what this executor does not take (exit 2, before any work)."""
        if options.address is not None and not self.takes_address:
            takers = ", ".join(k.name for k in kinds if k.takes_address)
            what = f"only {takers} takes an address" if takers else "no executor here takes an address"
            raise UsageError(
                f"--executor {self.name}:{options.address}: {what}",
                f"write --executor {self.name}, or one of {kinds.help()}",
            )
        if options.ship is not None and not self.ships:
            raise UsageError(
                f"--executor {self.name} does not ship the project: it runs where the project is", "leave ship unset"
            )


class ExecutorKinds:
    """An explicit registry of executor kinds, in registration order; a name registered twice is an error."""

    def __init__(self, kinds: Sequence[ExecutorKind] = ()) -> None:
        self._kinds: dict[str, ExecutorKind] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: ExecutorKind) -> ExecutorKind:
        if kind.name in self._kinds:
            raise ValueError(f"executor {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind
        return kind

    def __iter__(self) -> Iterator[ExecutorKind]:
        return iter(self._kinds.values())

    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def help(self) -> str:
        return ", ".join(self._kinds)

    def get(self, name: str) -> ExecutorKind:
        kind = self._kinds.get(name)
        if kind is None:
            raise UsageError(f"unknown --executor {name!r}", f"use one of {self.help()}")
        return kind

    def resolve(self, options: ExecutorOptions) -> ExecutorKind:
        """The kind the options name, checked against what it takes."""
        kind = self.get(options.kind)
        kind.check(options, self)
        return kind

    def executor_for(self, options: ExecutorOptions) -> Executor:
        return self.resolve(options).make(options)
