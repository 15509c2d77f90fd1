"""Timings: seconds per stage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..section import ReportSection, Section, Text

if TYPE_CHECKING:
    from ...results import Report


def build(report: Report) -> Section | None:
    if not report.timings:
        return None
    return Section("Timings", (Text(", ".join(f"{k} {v:.2f} s" for k, v in report.timings.items())),))


SECTION = ReportSection("timings", build)
