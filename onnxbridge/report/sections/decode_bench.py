"""Decode bench: prefill latency and decode tokens/s of a with-past folder on ONNX Runtime and the source."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..numbers import short
from ..section import Block, Bullets, ReportSection, Section, Table, Text

if TYPE_CHECKING:
    from ...results import Report

HEADERS = (
    "runtime",
    "variant",
    "mode",
    "batch",
    "prefill ms",
    "decode tokens/s",
    "peak RSS MiB",
    "added MiB",
    "trials",
)


def build(report: Report) -> Section | None:
    b = report.decode_bench
    if b is None or not b.rows:
        return None
    head = Text(
        f"{b.provider}; prompt {b.prompt_length} tokens, {b.new_tokens} new tokens (1 from the prefill, "
        f"{b.new_tokens - 1} decode steps), greedy, no padding; medians of interleaved trials; "
        f"threads {b.threads if b.threads is not None else 'default'}"
    )
    rows = tuple(
        (
            r.runtime,
            r.variant if r.runtime == "onnxruntime" else "-",
            r.mode,
            str(r.batch),
            short(r.prefill_ms),
            short(r.decode_tokens_per_s),
            short(r.peak_rss_bytes / 2**20),
            short(r.peak_added_bytes / 2**20),
            str(r.trials),
        )
        for r in b.rows
    )
    blocks: list[Block] = [head, Table(HEADERS, rows)]
    ratios = []
    for v in b.variants:
        for batch in b.batches:
            d, p, best = b.decode_speedup(batch, v), b.prefill_speedup(batch, v), b.best_ort(batch, v)
            if d is not None and p is not None and best is not None:
                ratios.append(
                    f"batch {batch}: ONNX Runtime {v} ({best.mode}) decodes {d:.2f}x and prefills {p:.2f}x the source"
                )
    if ratios:
        blocks.append(Bullets(tuple(ratios)))
    if b.same_tokens:
        ratios.append(
            "greedy tokens: "
            + ", ".join(
                f"batch {n} {'same on every side' if ok else 'DIFFER'}" for n, ok in zip(b.batches, b.same_tokens)
            )
        )
    if ratios:
        blocks.append(Bullets(tuple(ratios)))
        ratios = []
    if b.notes:
        blocks.append(Bullets(b.notes))
    return Section("Decode bench", tuple(blocks))


SECTION = ReportSection("decode_bench", build)
