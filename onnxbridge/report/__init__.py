"""Rendering reports: JSON for machines, Markdown (and HTML) for people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..fsutil import atomic_write_text
from ..options import REPORT_SUFFIXES

if TYPE_CHECKING:
    from ..results import Report

__all__ = ["to_json", "to_markdown", "to_html", "write_report", "REPORT_SUFFIXES"]



def to_json(report: Report) -> str:
    """The JSON report, indented."""
    return json.dumps(report.to_dict(), indent=2, allow_nan=False, default=str)


def to_markdown(report: Report) -> str:
    """A Markdown summary: route, simplification, every case and output."""
    from .markdown import to_markdown as render

    return render(report)


def to_html(report: Report) -> str:
    """A self-contained HTML page (no network at view time): tables, error histograms, placement."""
    from .html import to_html as render

    return render(report)


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


def write_report(report: Report, path: Path) -> Path:
    """Write ``report`` in the format its suffix names, atomically."""
    suffix = path.suffix.lower()
    if suffix not in (".json", ".md", ".html", ".htm"):
        raise UsageError(f"unknown report format {path.suffix!r}", "use --report FILE.json, FILE.md or FILE.html")
    from ..overlays import write_beside

    overlays = write_beside(report, path)  # Model Explorer node data (onnxbridge view), where the report has any
    if suffix == ".json":
        text = to_json(report) + "\n"
    elif suffix == ".md":
        from .markdown import to_markdown as render

        text = render(report, _plot_beside(report, path))
    elif suffix in (".html", ".htm"):
        from .html import to_html as render_html

        text = render_html(report, overlays, path.name)
    return atomic_write_text(path, text)
