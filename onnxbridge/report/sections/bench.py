"""Bench: one row per measurement (ONNX Runtime and the source), percentiles, throughput, speed-up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...results.bench import SPEEDUP_BASIS
from ..numbers import short
from ..section import Block, Bullets, ReportSection, Section, Table, Text

if TYPE_CHECKING:
    from ...results import Report

HEADERS = (
    "runtime",
    "provider",
    "batch",
    "io binding",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "mean ms",
    "stdev ms",
    "per s",
    "speed-up",
)


def build(report: Report) -> Section | None:
    b = report.bench
    if b is None or not b.results:
        return None
    rows = []
    for r in b.results + b.reference_results:
        s = r.stats
        speed = r.speedup_vs_reference
        rows.append(
            (
                r.runtime,
                r.provider_used,
                str(r.batch),
                "yes" if r.io_binding else "no",
                *(short(x) for x in (s.p50, s.p90, s.p99, s.mean, s.stdev)),
                short(r.throughput_per_s),
                "-" if speed is None else f"{speed:.2f}x",
            )
        )
    blocks: list[Block] = [Text(f"speed-up basis: {SPEEDUP_BASIS}"), Table(HEADERS, tuple(rows))]
    checks = [
        f"source vs ONNX at batch {c.batch}: "
        + ("✓ same outputs" if c.passed else "✗ outputs differ")
        + f" (max_abs {short(c.max_abs)})"
        + (f": {c.error}" if c.error else "")
        for c in b.reference_parity
    ]
    if checks:
        blocks.append(Bullets(tuple(checks)))
    return Section("Bench", tuple(blocks))


SECTION = ReportSection("bench", build)
