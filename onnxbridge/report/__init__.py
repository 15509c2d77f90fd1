"""Rendering reports: JSON for machines, Markdown (and HTML) for people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..fsutil import atomic_write_text
from ..options import REPORT_SUFFIXES

if TYPE_CHECKING:
    from ..overlays import OverlayIndex
    from ..results import Report
    from .section import ReportSections

__all__ = ["to_json", "to_markdown", "to_html", "write_report", "REPORT_SUFFIXES"]


def to_json(report: Report) -> str:
    """The JSON report, indented."""
    return json.dumps(report.to_dict(), indent=2, allow_nan=False, default=str)


def _sections(sections: ReportSections | None) -> ReportSections:
    if sections is not None:
        return sections
    from .registry import SECTIONS

    return SECTIONS


def to_markdown(report: Report, sections: ReportSections | None = None) -> str:
    """A Markdown summary: the run's facts, then each section (``sections``: default ``report/registry.py``)."""
    from .markdown import to_markdown as render

    return render(report, _sections(sections))


def to_html(report: Report, sections: ReportSections | None = None) -> str:
    """A self-contained HTML page (no network at view time): tables, error histograms, placement."""
    from .html import to_html as render

    return render(report, _sections(sections))


def _plot_beside(report: Report, path: Path) -> str | None:
    """The per-layer plot of a localisation, written beside a Markdown report (``NAME.where.svg``);
    its file name, or None when there is nothing to plot or no matplotlib."""
    if report.localization is None:
        return None
    from .divergence import divergence_figure
    from .figures import save

    fig = divergence_figure(report.localization)
    if fig is None:
        return None
    return save(fig, path.with_name(path.stem + ".where.svg")).name


def write_report(
    report: Report, path: Path, sections: ReportSections | None = None, overlays: OverlayIndex | None = None
) -> Path:
    """Write ``report`` in the format its suffix names, atomically; ``overlays``: the overlay files written
    beside it (``onnxbridge.overlays.write_beside``), linked from the page."""
    suffix = path.suffix.lower()
    if suffix not in (".json", ".md", ".html", ".htm"):
        raise UsageError(f"unknown report format {path.suffix!r}", "use --report FILE.json, FILE.md or FILE.html")
    if suffix == ".json":
        text = to_json(report) + "\n"
    elif suffix == ".md":
        from .markdown import to_markdown as render
        from .section import RenderContext

        text = render(report, _sections(sections), RenderContext(_plot_beside(report, path), overlays, path.name))
    elif suffix in (".html", ".htm"):
        from .html import to_html as render_html
        from .section import RenderContext

        text = render_html(report, _sections(sections), RenderContext(overlays=overlays, report_name=path.name))
    return atomic_write_text(path, text)
