"""KV cache: ``debug FOLDER OUT_DIR``'s step-by-step replay, the first (step, layer, key | value) that
leaves the source's cache, and every layer at that step."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..section import Block, Bullets, ReportSection, Section, Table, Text

if TYPE_CHECKING:
    from ...results import CacheCheck, Report

HEADERS = ("step", "output", "max_abs", "tolerance", "row", "head", "position", "token", "verdict")


def _row(c: CacheCheck) -> tuple[str, ...]:
    return (
        str(c.step),
        c.name,
        f"{c.max_abs:.3g}",
        f"{c.tolerance:.3g}",
        str(c.row),
        "-" if c.head is None else str(c.head),
        str(c.position),
        str(c.token),
        "ok" if c.passed else "DIVERGES",
    )


def build(report: Report) -> Section | None:
    """The verdict, the worst output of each step replayed, then every output at the diverging step."""
    d = report.cache_divergence
    if d is None:
        return None
    head = Text(
        f"{'PASS' if d.passed else 'FAIL'}: {d.summary()} ({d.provider}; {len(d.prompts)} prompt(s) of lengths "
        f"{[len(p) for p in d.prompts]} left-padded in one batch, fed the source's greedy tokens; atol {d.atol:g} "
        "scaled by max(1, max |source|); padded positions left out)"
    )
    blocks: list[Block] = [
        head,
        Bullets(("worst output of each step",)),
        Table(HEADERS, tuple(_row(c) for c in d.steps)),
    ]
    last = d.first.step if d.first is not None else (d.steps[-1].step if d.steps else None)
    if last is not None:
        blocks += [Bullets((f"every output at step {last}",)), Table(HEADERS, tuple(_row(c) for c in d.at_first))]
    return Section("KV cache", tuple(blocks), anchor="kv-cache")


SECTION = ReportSection("cache_divergence", build)
