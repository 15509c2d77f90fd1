"""Generation: token-by-token parity of the with-past files against the source's own ``generate()``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..section import ReportSection, Section, Table, Text

if TYPE_CHECKING:
    from ...results import Report


def build(report: Report) -> Section | None:
    """The verdict, then one row per prompt and step up to its first difference (token, source token,
    logits max_abs, top-2 gap)."""
    g = report.generation
    if g is None:
        return None
    head = Text(
        f"{'PASS' if g.passed else 'FAIL'}: {g.summary()} ({g.provider}; logits atol {g.logits_atol:g}, "
        f"tie tolerance {g.tie_tolerance:g}, scaled by max(1, max |logit|))"
    )
    rows = []
    for i, row in enumerate((*g.rows, *g.batch_one)):
        label = f"{i} ({len(row.prompt)} tokens{', batch 1' if i >= len(g.rows) else ''})"
        for s in row.steps:
            mark = row.verdict if row.step == s.step else ("same" if row.step is None or s.step < row.step else "")
            rows.append(
                (label, mark, str(s.step), str(s.token), str(s.source_token), f"{s.max_abs:.3g}", f"{s.top2_gap:.3g}")
            )
    table = Table(("prompt", "verdict", "step", "token", "source token", "logits max_abs", "top-2 gap"), tuple(rows))
    return Section("Generation", (head, table))


SECTION = ReportSection("generation", build)
