"""Upgrade: what ``upgrade`` changed (opset, IR, op versions, repairs) and the expected outputs' verdict."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..section import Bullets, ReportSection, Section

if TYPE_CHECKING:
    from ...results import Report, UpgradeResult


def _verdict(ok: bool) -> str:
    return "✓ pass" if ok else "✗ FAIL"


def upgrade_facts(u: UpgradeResult) -> list[str]:
    """What ``upgrade`` changed, one fact a line."""
    facts = [
        (
            f"opset {u.opset_before} → {u.opset_after}, IR {u.ir_before} → {u.ir_after}, "
            f"nodes {u.nodes_before} → {u.nodes_after}"
        ),
        f"op types: {u.replaced}",
    ]
    if u.op_versions:
        facts.append("op versions: " + ", ".join(f"{op} {a}→{b}" for op, (a, b) in u.op_versions.items()))
    facts.append(
        f"repairs: {u.initializer_inputs_removed} weight input(s) made constants, "
        f"{u.shapes_added} output shape(s) inferred"
    )
    if u.golden is not None:
        facts.append(
            f"expected outputs ({u.golden_source}): {_verdict(u.golden.passed)}, {len(u.golden.cases)} case(s)"
        )
    return facts + list(u.notes)


def build(report: Report) -> Section | None:
    if report.upgrade is None:
        return None
    return Section("Upgrade", (Bullets(tuple(upgrade_facts(report.upgrade))),))


SECTION = ReportSection("upgrade", build)
