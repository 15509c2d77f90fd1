"""Simplify: node counts before and after, the simplifier kept, and every simplifier tried."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..section import Block, ReportSection, Section, Table, Text

if TYPE_CHECKING:
    from ...results import Report


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.3g} MB"


def build(report: Report) -> Section | None:
    s = report.simplify
    if s is None:
        return None
    blocks: list[Block] = [
        Text(f"nodes {s.nodes_before} → {s.nodes_after} in {s.seconds:.2f} s" + (f" — {s.reason}" if s.reason else ""))
    ]
    if s.candidates or s.op_diff:
        blocks.append(
            Text(
                f"kept: {s.tool or 'the input'}"
                + (
                    "; op counts changed: " + ", ".join(f"{k} {n:+d}" for k, n in s.op_diff.items())
                    if s.op_diff
                    else ""
                )
            )
        )
    if s.candidates:
        rows = tuple(
            (
                c.tool,
                "yes" if c.ok else f"no: {c.detail or ''}",
                str(c.nodes),
                _mb(c.weight_bytes),
                f"{c.seconds:.2f}",
                "-" if c.parity is None else ("✓" if c.parity else "✗"),
                ", ".join(f"{k} {n:+d}" for k, n in c.op_diff.items()) or "-",
            )
            for c in s.candidates
        )
        blocks.append(Table(("simplifier", "ran", "nodes", "weights", "seconds", "parity", "op counts changed"), rows))
    return Section("Simplify", tuple(blocks))


SECTION = ReportSection("simplify", build)
