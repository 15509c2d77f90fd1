"""How a report writes a measured number: three significant digits, 0 as ``0``, ``inf`` and ``nan`` as
such (a NaN is a finding, never hidden), ``-`` when nothing was measured."""

from __future__ import annotations

__all__ = ["short"]


def short(x: float | None) -> str:
    """``x`` in three significant digits; ``-`` for None."""
    if x is None:
        return "-"
    return "0" if x == 0 else f"{x:.3g}"
