"""What every loader owes a hostile input: a value, or an OnnxBridgeError with exit code 2 and a
clear one-line message; never another exception, a traceback, a hang, or a file written."""

from __future__ import annotations

import contextlib
import re
import signal
from collections.abc import Callable, Iterator, Sequence
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
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


# what a Python traceback leaves in a message: its header, its word, a frame line
TRACEBACK_SIGNS = (re.compile(r"Traceback"), re.compile(r'File "[^"]*", line \d+'))


def traceback_signs(message: str, echoes: Sequence[str] = ()) -> list[str]:
    """The signs of a traceback in ``message`` that the input itself does not hold: a message may echo
    its input, and a fuzzed input may be the word "Traceback"."""
    return [
        sign.pattern
        for sign in TRACEBACK_SIGNS
        if sign.search(message) and not any(sign.search(text) for text in echoes)
    ]


def loads_or_refuses(call: Callable[[], Any], folder: Path, echoes: Sequence[str] = ()) -> Any:
    """Run ``call``; returns its value, or None after a clean refusal. Anything else fails the test.
    ``echoes``: the input's own text, which the refusal may quote."""
    before = snapshot(folder)
    try:
        with time_limit():
            return call()
    except OnnxBridgeError as e:
        assert e.exit_code == EXIT_USAGE, (type(e).__name__, e.exit_code, e.message)
        assert e.message.strip() and not traceback_signs(e.message, echoes), e.message
        assert len(e.message) < 2000, e.message[:300]
        return None
    finally:
        assert snapshot(folder) == before, "a loader wrote into the folder"
