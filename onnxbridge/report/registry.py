"""The report's sections, in the order every backend lays them out: one registration line per section."""

from __future__ import annotations

from .section import ReportSections
from .sections import (
    bench,
    cache_debug,
    decode_bench,
    generation,
    graph,
    localization,
    notes,
    routes,
    simplify,
    timings,
    upgrade,
    validation,
    variants,
)

__all__ = ["SECTIONS"]

SECTIONS = ReportSections()
SECTIONS.register(routes.SECTION)
SECTIONS.register(upgrade.SECTION)
SECTIONS.register(simplify.SECTION)
SECTIONS.register(validation.SECTION)
SECTIONS.register(localization.SECTION)
SECTIONS.register(cache_debug.SECTION)
SECTIONS.register(graph.SECTION)
SECTIONS.register(generation.SECTION)
SECTIONS.register(bench.SECTION)
SECTIONS.register(decode_bench.SECTION)
SECTIONS.register(variants.SECTION)
SECTIONS.register(notes.SECTION)
SECTIONS.register(timings.SECTION)
