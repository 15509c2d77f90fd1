"""Export routes: every route tried, which won, and why the others lost."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..section import ReportSection, Section, Table

if TYPE_CHECKING:
    from ...results import Report


def route_why(error: str | None, failing_op: str | None) -> str:
    """Why a route lost: its error and the failing op, as one line ('' when it won)."""
    return (error or "") + (f" (op: {failing_op})" if failing_op else "")


def build(report: Report) -> Section | None:
    conv = report.conversion
    if conv is None or not conv.attempts:
        return None
    rows = tuple(
        (a.route, "won" if a.ok else "failed", f"{a.seconds:.2f}", route_why(a.error, a.failing_op))
        for a in conv.attempts
    )
    return Section(
        "Routes", (Table(("route", "outcome", "seconds", "why"), rows, tuple(not a.ok for a in conv.attempts)),)
    )


SECTION = ReportSection("routes", build)
