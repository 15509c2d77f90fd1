"""A report section as a typed value, and the explicit registry the renderers walk in order.

A section module declares ``SECTION = ReportSection(name, build)``: ``build(report)`` returns a
:class:`Section` (a title and blocks: :class:`Text`, :class:`Bullets`, :class:`Table`) or None when the
report has nothing for it. Every backend (Markdown, HTML) lays the blocks out; none reads the JSON dict.
A section whose HTML needs more than blocks (plots) gives ``markdown`` / ``html`` renderers of its own
(validation, localisation, variants). Adding a section is one module in ``report/sections/`` and one
``SECTIONS.register`` line in ``report/registry.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..results.table import Table

if TYPE_CHECKING:
    from ..overlays import OverlayIndex
    from ..results import Report

__all__ = ["Bullets", "Text", "Table", "Block", "Section", "ReportSection", "ReportSections", "RenderContext"]


@dataclass(frozen=True)
class Text:
    """A paragraph of plain text (the backends escape it)."""

    text: str


@dataclass(frozen=True)
class Bullets:
    """A list of plain-text items."""

    items: tuple[str, ...]


Block = Text | Bullets | Table


@dataclass(frozen=True)
class Section:
    """One titled section of a report: blocks, in order. ``anchor`` names it for links (``#where``)."""

    title: str
    blocks: tuple[Block, ...]
    anchor: str | None = None


@dataclass(frozen=True)
class RenderContext:
    """What a renderer may need besides the report: the per-layer plot written beside a Markdown report,
    the overlay files written beside the report (``onnxbridge view``) and the report's own file name."""

    plot_file: str | None = None
    overlays: OverlayIndex | None = None
    report_name: str = ""


@dataclass(frozen=True)
class ReportSection:
    """A registered section: ``build`` gives its typed value; ``markdown`` / ``html`` (optional) lay out a
    section that needs more than blocks, and are used instead of ``build`` by that backend."""

    name: str
    build: Callable[[Report], Section | None] | None = None
    markdown: Callable[[Report, RenderContext], list[str]] | None = None
    html: Callable[[Report, RenderContext], str] | None = None

    def __post_init__(self) -> None:
        if self.build is None and (self.markdown is None or self.html is None):
            raise ValueError(f"report section {self.name!r} needs build, or both a markdown and an html renderer")


class ReportSections:
    """An explicit, ordered registry of report sections; a name registered twice is an error."""

    def __init__(self, sections: Sequence[ReportSection] = ()) -> None:
        self._sections: dict[str, ReportSection] = {}
        for s in sections:
            self.register(s)

    def register(self, section: ReportSection) -> ReportSection:
        if section.name in self._sections:
            raise ValueError(f"report section {section.name!r} is registered twice")
        self._sections[section.name] = section
        return section

    def names(self) -> tuple[str, ...]:
        return tuple(self._sections)

    def __iter__(self) -> Iterator[ReportSection]:
        return iter(self._sections.values())

    def with_section(self, section: ReportSection) -> ReportSections:
        """A copy with one more section at the end (the registry itself is left as it is)."""
        return ReportSections([*self, section])
