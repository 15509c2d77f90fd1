"""What every loader owes a hostile input: a value, or an OnnxBridgeError with exit code 2 and a
clear one-line message; never another exception, a traceback, a hang, or a file written."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from onnxbridge.errors import EXIT_USAGE, OnnxBridgeError

HANG_S = 60  # one input taking longer than this is a hang


@contextlib.contextmanager
def time_limit(seconds: int = HANG_S) -> Iterator[None]:
    def hang(signum, frame):
        raise TimeoutError(f"loader still busy after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def loads_or_refuses(call: Callable[[], Any], folder: Path) -> Any:
    """Run ``call``; returns its value, or None after a clean refusal. Anything else fails the test."""
    before = snapshot(folder)
    try:
        with time_limit():
            return call()
    except OnnxBridgeError as e:
        assert e.exit_code == EXIT_USAGE, (type(e).__name__, e.exit_code, e.message)
        assert e.message.strip() and "Traceback" not in e.message, e.message
        assert len(e.message) < 2000, e.message[:300]
        return None
    finally:
        assert snapshot(folder) == before, "a loader wrote into the folder"
