"""Variants: each deployment variant's verdict, size, speed and accuracy, and what its kind adds."""

from __future__ import annotations

from ..html import variants_html
from ..markdown import variants_markdown
from ..section import ReportSection

SECTION = ReportSection("variants", markdown=variants_markdown, html=variants_html)
