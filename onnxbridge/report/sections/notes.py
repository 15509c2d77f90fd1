"""Notes: the run's own notes and the exporter's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..section import Bullets, ReportSection, Section

if TYPE_CHECKING:
    from ...results import Report


def build(report: Report) -> Section | None:
    notes = list(report.notes) + (list(report.conversion.notes) if report.conversion else [])
    return Section("Notes", (Bullets(tuple(notes)),)) if notes else None


SECTION = ReportSection("notes", build)
