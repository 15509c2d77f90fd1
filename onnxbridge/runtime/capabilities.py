"""What a reference runner may do beyond ``run``: small runtime-checkable protocols, one per capability.

The stages ask ``isinstance(runner, TimedReference)`` instead of probing attributes by name; a runner
(a converter's, a plugin's) opts in by having the method. Each protocol is one method, so a runner
offers any subset.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from ..results import Placement

__all__ = ["Call", "TimedReference", "Releasable", "OnAccelerator", "ThreadLimited", "RandomOpsFinder", "Placed"]

Call = Callable[[], object]


@runtime_checkable
class TimedReference(Protocol):
    """Prepares its own timed call: inputs moved to ``device`` once, the framework called directly.
    Returns (call, sync or None, a description such as ``pytorch eager (cuda)``)."""

    def timed_call(self, feeds: Mapping[str, np.ndarray], device: str = "cpu") -> tuple[Call, Call | None, str]: ...


@runtime_checkable
class Releasable(Protocol):
    """Undoes what a timed call changed (a module moved to a GPU goes back to the CPU)."""

    def release(self) -> None: ...


@runtime_checkable
class OnAccelerator(Protocol):
    """Says which accelerator its framework can run on here (``cuda``), or None."""

    def accelerator(self) -> str | None: ...


@runtime_checkable
class ThreadLimited(Protocol):
    """Runs its framework on ``n`` intra-op threads inside the context (a fair race with ONNX Runtime)."""

    def threads(self, n: int | None) -> AbstractContextManager[None]: ...


@runtime_checkable
class RandomOpsFinder(Protocol):
    """Names the random ops one call runs on ``feeds`` (for a source that does not repeat itself)."""

    def random_ops(self, feeds: Mapping[str, np.ndarray]) -> list[str]: ...


@runtime_checkable
class Placed(Protocol):
    """An ONNX Runtime session that profiled where each node ran."""

    placement: Placement | None
