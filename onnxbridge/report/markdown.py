"""The Markdown report: for pull requests and terminals; every case and output in tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..results import Report

__all__ = ["to_markdown", "route_why", "AXIS_HEADERS", "axis_rows", "case_mark"]

AXIS_HEADERS = ("axis", "export size", "declared", "exporter recorded", "smallest the source runs", "outcome", "why")


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x == 0:
        return "0"
    return f"{x:.3g}"


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("✓ pass" if ok else "✗ FAIL")


def route_why(attempt: dict) -> str:
    """Why a route of ``routes_tried`` lost: its error and the failing op, as one line ('' when it won)."""
    op = attempt.get("failing_op")
    return (attempt.get("error") or "") + (f" (op: {op})" if op else "")


def upgrade_facts(u: dict) -> list[str]:
    """What ``upgrade`` changed, one fact a line (the JSON report's ``upgrade``), for both renderers."""
    facts = [f"opset {u['opset_before']} → {u['opset_after']}, IR {u['ir_before']} → {u['ir_after']}, "
             f"nodes {u['nodes_before']} → {u['nodes_after']}",
             f"op types: {u['replaced']}"]
    if u["op_versions"]:
        facts.append("op versions: " + ", ".join(f"{op} {a}→{b}" for op, (a, b) in u["op_versions"].items()))
    facts.append(f"repairs: {u['initializer_inputs_removed']} weight input(s) made constants, "
                 f"{u['shapes_added']} output shape(s) inferred")
    golden = u.get("golden")
    if golden is not None:
        facts.append(f"expected outputs ({u['golden_source']}): {_verdict(golden['passed'])}, "
                     f"{len(golden['cases'])} case(s)")
    return facts + list(u["notes"])


def _span(r) -> str:
    return "-" if r is None else f"{r[0]}..{'' if r[1] is None else r[1]}"


def axis_rows(v) -> list[list[str]]:
    """One row per dynamic axis of a ParityReport (plain text; the renderers escape it)."""
    return [[a.axis, str(a.export_size), _span(a.declared), _span(a.exported),
             "-" if a.smallest_runnable is None else str(a.smallest_runnable), a.outcome.value.replace("_", " "),
             a.note or a.guard or "-"] for a in v.axes]


def case_mark(case) -> str:
    """How a case that did not compare reads: listed (the source cannot run it) or failed."""
    return "– not compared" if case.kind.value == "source_limit" else "✗"


def _cell(text: str) -> str:
    """Text safe inside one Markdown table cell: no pipes, no line breaks, not endless."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= 300 else text[:297] + "..."


def to_markdown(report: Report) -> str:
    """A Markdown summary: route, simplification, every case and output."""
    d = report.to_dict()
    lines = [f"# onnxbridge {d['command']}: {_verdict(report.passed) if report.passed is not None else 'done'}", ""]
    rows = [
        ("source", d.get("source")), ("framework", d.get("framework")), ("output", d.get("output")),
        ("route", d.get("route")), ("opset", d.get("opset")),
    ]
    lines += ["| | |", "| --- | --- |"] + [f"| {k} | `{v}` |" for k, v in rows if v is not None]
    if d["routes_tried"]:
        lines += ["", "## Routes", "", "| route | outcome | seconds | why |", "| --- | --- | --- | --- |"]
        for a in d["routes_tried"]:
            lines.append(f"| {a['route']} | {'won' if a['ok'] else 'failed'} | {a['seconds']:.2f} | {route_why(a)} |")
    if d.get("upgrade"):
        lines += ["", "## Upgrade", ""] + [f"- {f}" for f in upgrade_facts(d["upgrade"])]
    s = d.get("simplify")
    if s:
        lines += ["", "## Simplify", "",
                  f"nodes {s['nodes_before']} → {s['nodes_after']} in {s['seconds']:.2f} s"
                  + (f" — {s['reason']}" if s.get("reason") else "")]
    v = report.validation
    if v is not None:
        lines += ["", "## Validation", "",
                  f"reference: {v.reference}; provider requested `{v.provider_requested}`, "
                  f"used `{v.provider_used}`; {v.summary()}", ""]
        if v.tolerances:
            lines += ["| output | dtype | atol | rtol | from |", "| --- | --- | --- | --- | --- |"]
            lines += [f"| {n} | {t.get('dtype', '-')} | {_fmt(t.get('atol'))} | {_fmt(t.get('rtol'))} | "
                      f"{t.get('from') or 'default'} |" for n, t in v.tolerances.items()]
            lines.append("")
        lines += ["| case | output | shape | max_abs | max_rel | mean_abs | cosine | top-1 | atol | rtol | result |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for c in v.cases:
            if c.error:
                lines.append(f"| {c.label} | - | - | - | - | - | - | - | - | - | {case_mark(c)} {_cell(c.error)} |")
            for o in c.outputs:
                extra = (f" {o.mismatched} off, worst at {list(o.worst_index)}"
                         if (not o.passed and o.worst_index is not None and not o.error) else "")
                top1 = "-" if o.top1_agreement is None else f"{o.top1_agreement:.0%}"
                lines.append(
                    f"| {c.label} | {o.name} | {list(o.shape)} | {_fmt(o.max_abs)} | {_fmt(o.max_rel)} | "
                    f"{_fmt(o.mean_abs)} | {_fmt(o.cosine)} | {top1} | {o.atol:g} | {o.rtol:g} | "
                    f"{_verdict(o.passed)}{extra}{' ' + _cell(o.error) if o.error else ''} |"
                )
        if v.axes:
            lines += ["", "| " + " | ".join(AXIS_HEADERS) + " |", "|" + " --- |" * len(AXIS_HEADERS)]
            lines += ["| " + " | ".join(_cell(x) for x in row) + " |" for row in axis_rows(v)]
        if v.placement is not None:
            lines += ["", f"**placement**: {v.placement.summary()}"]
            if v.placement.fallback:
                lines += ["", "| node | op | ran on |", "| --- | --- | --- |"]
                lines += [f"| {n.name} | {n.op_type} | {n.provider} |" for n in v.placement.fallback[:50]]
        for n in v.notes:
            lines.append(f"\n> {n}")
    lines += _bench_markdown(d.get("bench"))
    notes = d.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    if d.get("timings"):
        lines += ["", "## Timings", "", ", ".join(f"{k} {v:.2f}" for k, v in d["timings"].items())]
    return "\n".join(lines) + "\n"


def _bench_markdown(b: dict | None) -> list[str]:
    """The bench section: one row per measurement (see onnxbridge.api._bench)."""
    if not b:
        return []
    lines = ["", "## Bench", "", f"speed-up basis: {b.get('speedup_basis', '-')}", "",
             "| runtime | provider | batch | io binding | p50 ms | p90 ms | p99 ms | mean ms | stdev ms | per s | speed-up |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in list(b.get("results") or []) + list(b.get("reference_results") or []):
        lat = r["latency_ms"]
        speed = r.get("speedup_vs_reference")
        lines.append(
            f"| {r['runtime']} | {r['provider_used']} | {r['batch']} | {'yes' if r['io_binding'] else 'no'} | "
            + " | ".join(_fmt(lat[k]) for k in ("p50", "p90", "p99", "mean", "stdev"))
            + f" | {_fmt(r['throughput_per_s'])} | {'-' if speed is None else f'{speed:.2f}x'} |"
        )
    return lines
