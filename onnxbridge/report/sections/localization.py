"""Where it diverges: the first diverging layer or stage, the plot, the commands that reproduce it."""

from __future__ import annotations

from ..html import localization_html
from ..markdown import localization_markdown
from ..section import ReportSection

SECTION = ReportSection("localization", markdown=localization_markdown, html=localization_html)
