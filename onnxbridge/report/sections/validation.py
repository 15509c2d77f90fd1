"""Validation: parity of every case and output (own layout: error histograms and placement plots in HTML)."""

from __future__ import annotations

from ..html import validation_html
from ..markdown import validation_markdown
from ..section import ReportSection

SECTION = ReportSection("validation", markdown=validation_markdown, html=validation_html)
