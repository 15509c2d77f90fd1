"""Peak resident memory per stage, for the report's ``peak_rss_bytes``.

On Linux the kernel's high-water mark (``VmHWM``) is reset at each stage's start (``clear_refs``
5), so each stage's figure is its own peak; where that is not possible the figure is the process's
peak so far (never less than the stage's). Memory of child processes is not counted.
"""

from __future__ import annotations

import contextlib
import resource
import sys
from collections.abc import Iterator

__all__ = ["STAGES", "StagePeaks", "peak_rss_bytes", "reset_peak", "rss_bytes"]

# every stage a run report's peak_rss_bytes may name (docs/schema/report.schema.json lists the same)
STAGES = ("load", "export", "upgrade", "simplify", "optimize", "validate", "localize", "variants", "bench")


def peak_rss_bytes() -> int:
    """The process's peak RSS (since the last reset, where resets work)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _reset() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


class StagePeaks:
    """``with peaks.stage("export"): ...`` records that stage's peak RSS in ``peaks.bytes``."""

    def __init__(self) -> None:
        self.bytes: dict[str, int] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if name not in STAGES:
            raise ValueError(f"unknown stage {name!r}: add it to _memory.STAGES and the report schema")
        _reset()
        try:
            yield
        finally:
            self.record(name)

    def record(self, name: str) -> None:
        """Count the peak so far towards ``name`` (before a stage nested in it resets the mark)."""
        self.bytes[name] = max(self.bytes.get(name, 0), peak_rss_bytes())


def reset_peak() -> bool:
    """Reset the kernel's high-water mark so the next :func:`peak_rss_bytes` is the peak from now on
    (False where that is not possible: then it stays the process's peak so far)."""
    return _reset()


def rss_bytes() -> int:
    """The process's resident memory now (0 where /proc is not readable)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
