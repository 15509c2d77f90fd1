"""Small helpers every layer shares: error lines and keeping third-party noise off the terminal.

Nothing here imports a framework, onnx, onnxruntime or numpy.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Callable, Iterator

__all__ = ["first_line", "quiet", "Progress", "no_progress", "EXPORTER_LOGGERS", "TF_LOGGERS"]

Progress = Callable[[str], None]

# Loggers that chatter while exporting or converting (set to ERROR inside ``quiet``).
EXPORTER_LOGGERS = ("torch", "torch.onnx", "torch.export", "torch._export", "onnxscript")
TF_LOGGERS = ("tensorflow", "tf2onnx", "absl", "keras", "h5py")


def no_progress(_: str) -> None:
    """A progress callback that shows nothing."""
    return None


def first_line(e: BaseException, limit: int = 300, *, with_type: bool = True) -> str:
    """The first meaningful line of an exception message (``Type: line``, or the line alone).

    Traceback and ``File ...`` lines are skipped; an empty message gives the type's name.
    """
    for line in str(e).strip().splitlines():
        line = line.strip()
        if line and not line.startswith(("Traceback", "File ")):
            return f"{type(e).__name__}: {line[:limit]}" if with_type else line[:limit]
    return type(e).__name__


@contextlib.contextmanager
def quiet(logger_names: tuple[str, ...] = EXPORTER_LOGGERS) -> Iterator[io.StringIO]:
    """Keep exporters' prints and logger chatter off stdout/stderr (``--json`` must stay clean).

    Yields the buffer that caught what was printed.
    """
    buf = io.StringIO()
    loggers = [logging.getLogger(n) for n in logger_names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = buf
    try:
        yield buf
    finally:
        sys.stdout, sys.stderr = old_out, old_err
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)
