"""Small helpers every layer shares: error lines, error summaries, and keeping third-party noise off
the terminal.

Nothing here imports a framework, onnx, onnxruntime or numpy.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

__all__ = [
    "first_line",
    "summarize_error",
    "quiet",
    "Captured",
    "Progress",
    "no_progress",
    "EXPORTER_LOGGERS",
    "TF_LOGGERS",
]

Progress = Callable[[str], None]

# Loggers that chatter while exporting or converting (set to ERROR inside ``quiet``).
EXPORTER_LOGGERS = ("torch", "torch.onnx", "torch.export", "torch._export", "onnxscript", "transformers")
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


# ----------------------------------------------------------------------------------- error summaries
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# how exporters name one dimension of one input: inputs['x'].shape[1], L['x'].size()[1],
# L['kwargs']['input_ids'].size()[0], inputs['tensors'][0].shape[0] (positional adapters)
_DIM_BY_INDEX = (
    re.compile(r"inputs\['(?:tensors|args)'\]\[(\d+)\]\.shape\[(\d+)\]"),
    re.compile(r"L\['(?:tensors|args)'\]\[(\d+)\]\.size\(\)\[(\d+)\]"),
    re.compile(r"inputs\[(\d+)\]\.shape\[(\d+)\]"),
)
_DIM_BY_NAME = (
    re.compile(r"inputs\['(\w+)'\]\.shape\[(\d+)\]"),
    re.compile(r"L\['kwargs'\]\['(\w+)'\]\.size\(\)\[(\d+)\]"),
    re.compile(r"L\['(\w+)'\]\.size\(\)\[(\d+)\]"),
)
# lines that are advice about the exporter itself, not about the model
_BOILERPLATE = (
    "Create an issue",
    "Create an error report",
    "Next steps",
    "For more information",
    "tlparse",
    "Refer to the full stack trace",
    "The error above occurred when calling torch.export.export",
    "draft_export",
    "If you're using mark_dynamic",
    "Use tlparse",
    "for more info run with",
    "TORCH_LOGS",
    "TORCHDYNAMO",
    "Set TORCH",
    "To fix the error",
)


@dataclass(frozen=True)
class ErrorSummary:
    """What an error says, and where: the headline, the detail lines that matter, the model's line."""

    headline: str
    details: tuple[str, ...] = ()
    where: str | None = None
    dims: tuple[tuple[str, int], ...] = field(default=(), compare=False)

    def text(self, max_details: int = 4, sep: str = "; ") -> str:
        lines = [self.headline, *self.details[:max_details]]
        if len(self.details) > max_details:
            lines.append(f"... {len(self.details) - max_details} more")
        if self.where:
            lines.append(f"at {self.where}")
        return sep.join(lines)


def _rename_dims(line: str, input_names: Sequence[str]) -> str:
    def by_index(m: re.Match) -> str:
        i = int(m.group(1))
        return f"input '{input_names[i] if i < len(input_names) else i}' dim {m.group(2)}"

    for pat in _DIM_BY_INDEX:
        line = pat.sub(by_index, line)
    for pat in _DIM_BY_NAME:
        line = pat.sub(lambda m: f"input '{m.group(1)}' dim {m.group(2)}", line)
    return line


def _dims(text: str, input_names: Sequence[str]) -> tuple[tuple[str, int], ...]:
    found: list[tuple[str, int]] = []
    for m in re.finditer(r"input '([^']+)' dim (\d+)", _rename_dims(text, input_names)):
        if (m.group(1), int(m.group(2))) not in found:
            found.append((m.group(1), int(m.group(2))))
    return tuple(found)


def _innermost_frame(text: str) -> str | None:
    """``file.py:LINE: code`` of the last frame of an 'Original traceback:' (torch.onnx) or 'The
    following call raised this error:' (torch.export) block."""
    for marker in ("Original traceback:", "The following call raised this error:"):
        _, found, block = text.partition(marker)
        if found:
            frames = re.findall(r'File "([^"]+)", line (\d+), in [\w<>]+\n\s+(.+)', block)
            if frames:
                f, line, code = frames[-1]
                return f"{f.rsplit('/', 1)[-1]}:{line}: {code.strip()}"
    m = re.search(r"\(([\w./-]+\.py:\d+) in \w+\)", text)
    return m.group(1) if m else None


def _cut_boilerplate(line: str) -> str:
    cut = min((line.find(b) for b in _BOILERPLATE if b in line), default=-1)
    return line if cut < 0 else line[:cut].rstrip()


def summarize_error(e: BaseException, input_names: Sequence[str] = (), limit: int = 400) -> ErrorSummary:
    """Keep the lines of a (long, multi-line) exporter error that say what failed and where.

    ``first_line`` loses them: a range conflict names the dimension on a ``- Received ...`` line, a
    constraint violation its suggested fix on an indented line, torch.onnx's wrapper the real error
    under ``## Exception summary`` and the model's line in ``Original traceback``. Exporter names of
    dimensions (``L['x'].size()[1]``) become ``input 'x' dim 1``; advice about the exporter is dropped.
    """
    text = _ANSI.sub("", str(e))
    lines = [ln.rstrip() for ln in text.splitlines()]
    if "## Exception summary" in text:  # torch.onnx wraps the real exception
        after = [ln for ln in text.split("## Exception summary", 1)[1].splitlines() if ln.strip()]
        m = re.match(r"<class '([\w.]+)'>: (.*)", after[0].strip()) if after else None
        headline = f"{m.group(1).rsplit('.', 1)[-1]}: {m.group(2)}" if m else (after[0].strip() if after else "")
        executing = tuple(ln.strip()[:200] for ln in after if ln.startswith("While executing"))[:1]
        return ErrorSummary(
            _rename_dims(headline, input_names)[:limit], executing, _innermost_frame(text), _dims(text, input_names)
        )
    headline = _cut_boilerplate(next((ln.strip() for ln in lines if ln.strip()), "")) or type(e).__name__
    details: list[str] = []
    suggested = False
    for ln in lines[1:]:
        s = _cut_boilerplate(ln.strip())
        if not s:
            suggested = suggested and bool(ln.strip())
            continue
        if s.startswith("- "):
            details.append(_rename_dims(s[2:], input_names)[:limit])
        elif s.startswith("Suggested fixes"):
            suggested = True
        elif suggested and ln.startswith("  "):
            details.append(f"suggested: {s[:limit]}")
        elif "(code:" in s or s.startswith("code:"):
            details.append(s[:limit])
    if not headline.startswith(type(e).__name__):
        headline = f"{type(e).__name__}: {headline}"
    return ErrorSummary(
        _rename_dims(headline, input_names)[:limit],
        tuple(dict.fromkeys(details)),
        _innermost_frame(text),
        _dims(text, input_names),
    )


# ----------------------------------------------------------------------------------- quiet
KEPT_BYTES = 64 * 1024


@dataclass
class Captured:
    """What a quiet block kept off the terminal: the last ``KEPT_BYTES`` written to file descriptors 1
    and 2 (C/C++ writes, handlers bound to the real streams; an exporter's IR dump of a large model runs
    to hundreds of MB) and Python's ``sys.stdout`` / ``sys.stderr``."""

    fd_text: str = ""
    python: io.StringIO = field(default_factory=io.StringIO)

    def text(self) -> str:
        return self.fd_text + self.python.getvalue()


@contextlib.contextmanager
def _fds_to(target: int) -> Iterator[None]:
    """Point file descriptors 1 and 2 at ``target`` for the block (C stdio flushed on both edges)."""
    for stream in (sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr):
        if stream is None:  # sys.__stdout__ / __stderr__ under pythonw and some embedders
            continue
        with contextlib.suppress(Exception):
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None).fflush(None)  # C++/libc buffers land in the file, not later on the terminal
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


@contextlib.contextmanager
def quiet(logger_names: tuple[str, ...] = EXPORTER_LOGGERS, *, enabled: bool = True) -> Iterator[Captured]:
    """Keep exporters' prints, logger chatter and C++ dumps off stdout/stderr (``--json`` must stay clean).

    ``sys.stdout`` / ``sys.stderr`` are swapped (Python prints) *and* file descriptors 1 and 2 are
    redirected to a temporary file (``os.dup2``): the TorchScript exporter's IR dumps and glog lines are
    written by C++ straight to the descriptors. Yields a :class:`Captured` holding everything.
    ``enabled=False`` (``--debug``) lets it all through. Process-wide: not for concurrent threads.
    """
    cap = Captured()
    if not enabled:
        yield cap
        return
    loggers = [logging.getLogger(n) for n in logger_names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    old_out, old_err = sys.stdout, sys.stderr
    with tempfile.TemporaryFile() as tmp:
        try:
            with _fds_to(tmp.fileno()):
                sys.stdout = sys.stderr = cap.python
                try:
                    yield cap
                finally:
                    sys.stdout, sys.stderr = old_out, old_err
        finally:
            for lg, lvl in zip(loggers, levels):
                lg.setLevel(lvl)
            tmp.seek(max(0, tmp.seek(0, os.SEEK_END) - KEPT_BYTES))
            cap.fd_text = tmp.read().decode("utf-8", "replace")
