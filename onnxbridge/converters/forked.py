"""Run one function in a forked child, beside the caller, and collect its (picklable) result later.

The TorchScript route uses it for the torch.export probe (each dynamic axis's exported range, whether
forward branches on values): the probe is pure shape work on fake tensors, as long as the TorchScript
export itself, and on a second core it runs during that export instead of after it.

Only where ``fork`` is safe and useful: Linux, more than one CPU. Anything that goes wrong in the child
(an exception, a crash, a result that does not pickle) comes back as "no result", and the caller does the
work itself; so a forked call never changes an answer, only when it is computed.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import select
import sys
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Forked", "fork_call"]

T = TypeVar("T")


class Forked(Generic[T]):
    """A call running in a child process; :meth:`result` waits for it (None: it gave no result)."""

    def __init__(self, pid: int, fd: int) -> None:
        self._pid = pid
        self._fd = fd
        self._done = False
        self._value: T | None = None

    def result(self, timeout: float = 600.0) -> T | None:
        """The child's result; None when it failed, or gave nothing within ``timeout`` seconds (a child
        stuck on a lock the fork copied held, say): it is killed and the caller does the work itself."""
        if not self._done:
            if not select.select([self._fd], [], [], timeout)[0]:
                self.cancel()
                return None
            self._done = True
            try:
                with os.fdopen(self._fd, "rb") as f:
                    data = f.read()
                ok, value = pickle.loads(data) if data else (False, None)
                self._value = value if ok else None
            except Exception:  # a child that died half-way: no result
                self._value = None
            finally:
                self._reap()
        return self._value

    def cancel(self) -> None:
        """Stop the child (its result is no longer wanted)."""
        if not self._done:
            self._done = True
            with contextlib.suppress(OSError):
                os.kill(self._pid, 9)
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._reap()

    def __del__(self) -> None:  # a result nobody collected: no child left running, no zombie
        self.cancel()

    def _reap(self) -> None:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(self._pid, 0)


def fork_call(fn: Callable[[], T]) -> Forked[T] | None:
    """``fn()`` in a forked child (one intra-op thread there: the parent's thread pool does not survive a
    fork); None where forking is not available or not worth it (one CPU), and the caller runs ``fn``."""
    if sys.platform != "linux" or (os.cpu_count() or 1) < 2:
        return None
    try:
        read, write = os.pipe()
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:  # pragma: no cover - the child; coverage does not follow it
        code = 0
        try:
            os.close(read)
            gc.freeze()  # the parent's objects: never scanned here, so their pages stay shared, not copied
            import torch

            torch.set_num_threads(1)
            try:
                payload = pickle.dumps((True, fn()))
            except BaseException:
                payload = pickle.dumps((False, None))
            with os.fdopen(write, "wb") as f:
                f.write(payload)
        except BaseException:
            code = 1
        finally:
            os._exit(code)  # no atexit hooks, no flushing of the parent's buffers
    os.close(write)
    return Forked(pid, read)
