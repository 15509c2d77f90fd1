"""The Markdown report: for pull requests and terminals; every case and output in tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .numbers import short

if TYPE_CHECKING:
    from ..results import OutputParity, Report

__all__ = ["to_markdown", "route_why", "AXIS_HEADERS", "axis_rows", "case_mark", "variant_cells",
           "VARIANT_VERDICTS"]

AXIS_HEADERS = ("axis", "export size", "declared", "exporter recorded", "smallest the source runs", "outcome", "why")


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


def _oracle_note(o: OutputParity) -> str:
    """The precision oracle's three distances and the masked positions of one output, when there are any."""
    note = ""
    if o.oracle is not None:
        note += (f" oracle{' (numerically sensitive)' if o.oracle.decided else ''}: source vs fp64 "
                 f"{short(o.oracle.source_vs_fp64)}, ONNX vs fp64 {short(o.oracle.onnx_vs_fp64)}, "
                 f"ONNX vs source {short(o.oracle.onnx_vs_source)}")
    if o.masked_positions:
        note += f" {o.masked_positions} masked position(s) not compared"
    return note


def _cell(text: str) -> str:
    """Text safe inside one Markdown table cell: no pipes, no line breaks, not endless."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= 300 else text[:297] + "..."


def to_markdown(report: Report, plot_file: str | None = None) -> str:
    """A Markdown summary: route, simplification, every case and output, and where it diverges
    (``plot_file``: the per-layer plot written beside the report, linked from it)."""
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
        lines += _simplifiers_markdown(report.simplify)
    v = report.validation
    if v is not None:
        lines += ["", "## Validation", "",
                  f"reference: {v.reference}; provider requested `{v.provider_requested}`, "
                  f"used `{v.provider_used}`; {v.summary()}", ""]
        if v.tolerances:
            lines += ["| output | dtype | atol | rtol | from |", "| --- | --- | --- | --- | --- |"]
            lines += [f"| {n} | {t.dtype or '-'} | {short(t.atol)} | {short(t.rtol)} | "
                      f"{t.source or 'default'} |" for n, t in v.tolerances.items()]
            lines.append("")
        lines += ["| case | output | shape | max_abs | max_rel | mean_abs | cosine | top-1 | atol | rtol | result |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for c in v.cases:
            if c.error:
                lines.append(f"| {c.label} | - | - | - | - | - | - | - | - | - | {case_mark(c)} {_cell(c.error)} |")
            for o in c.outputs:
                extra = (f" {o.mismatched} off, worst at {list(o.worst_index)}"
                         if (not o.passed and o.worst_index is not None and not o.error) else "")
                extra += _oracle_note(o)
                top1 = "-" if o.top1_agreement is None else f"{o.top1_agreement:.0%}"
                lines.append(
                    f"| {c.label} | {o.name} | {list(o.shape)} | {short(o.max_abs)} | {short(o.max_rel)} | "
                    f"{short(o.mean_abs)} | {short(o.cosine)} | {top1} | {o.atol:g} | {o.rtol:g} | "
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
    if report.localization is not None:
        from .divergence import markdown_section

        lines += markdown_section(report.localization, plot_file)
    lines += _bench_markdown(d.get("bench"))
    lines += _variants_markdown(report.variants)
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
            + " | ".join(short(lat[k]) for k in ("p50", "p90", "p99", "mean", "stdev"))
            + f" | {short(r['throughput_per_s'])} | {'-' if speed is None else f'{speed:.2f}x'} |"
        )
    return lines


VARIANT_VERDICTS = {"passed": "✓ PASS", "refused": "✗ FAIL (not written)", "forced": "✗ FAIL (written: --write-failed)",
                    "unavailable": "✗ unavailable"}
_GATED = ("cosine", "cosine_min", "top1", "top1_decisive", "top5", "max_abs", "nonfinite")


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.3g} MB"


def _x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def variant_cells(v) -> dict[str, str]:
    """Short texts for one variant (shared by the Markdown, HTML and terminal tables)."""
    acc = ", ".join(f"{m} {_cos(w) if m != 'nonfinite' else int(w)}" for m in _GATED
                    if (w := v.worst(m)) is not None and (m in v.budget or m in ("top1", "cosine")))
    speed = f"{_x(v.speedup_vs_fp32)} fp32" + (f", {_x(v.speedup_vs_eager)} eager" if v.speedup_vs_eager else "")
    return {"verdict": VARIANT_VERDICTS[v.status.value], "size": f"{_mb(v.size_bytes)} ({_x(v.size_ratio)})"
            if v.size_bytes else "-", "p50": f"{v.latency.p50:.3g} ms" if v.latency else "-",
            "speedup": speed if v.latency else "-", "accuracy": acc or "-"}


def _budget_text(budget: dict) -> str:
    return ", ".join(f"{k}{'<=' if k in ('max_abs', 'nonfinite') else '>='}{v:g}" for k, v in budget.items()) or "none"


def _variants_markdown(r) -> list[str]:
    """The variants section: one row per variant, then what each builder did and kept."""
    if r is None:
        return []
    base, eager = r.fp32_latency, r.eager_latency
    lines = ["", "## Variants", "",
             f"reference: {r.reference}; provider requested `{r.provider_requested}`, used `{r.provider_used}`; "
             f"inputs: {r.inputs}; shapes {', '.join(f'{k} {list(v)}' for k, v in r.shapes.items())}.", "",
             f"fp32: {_mb(r.fp32_size_bytes)}, p50 {base.p50:.3g} ms" if base else f"fp32: {_mb(r.fp32_size_bytes)}",
             ]
    if eager is not None and base is not None:
        lines[-1] += f"; the source's eager model p50 {eager.p50:.3g} ms (fp32 ONNX {_x(eager.p50 / base.p50)} eager)"
    t = r.timing
    lines += ["", f"Timing: p50 of {t.get('rounds')} interleaved round(s) x {t.get('runs_per_round')} runs after "
              f"{t.get('warmup')} warm-up, every variant beside fp32 in the same run"
              + (f"; load average {', '.join(str(x) for x in r.load_average)}" if r.load_average else "") + ".",
              "", f"Accuracy gate: each variant's budget below (defaults per variant, `--budget` overrides); "
              f"`top1_decisive` is argmax agreement over rows whose reference top-2 gap is at least "
              f"{r.decisive_margin:g} row standard deviations (near-ties flip under any rounding); `top1`, plain "
              f"argmax agreement per row (per position for sequence outputs), is reported beside it.", "",
              "| variant | verdict | size | p50 | speed-up | worst accuracy | budget | why |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for v in r.variants:
        c = variant_cells(v)
        rule = "not gated on speed" if v.min_speedup is None else f"speed >= {v.min_speedup:g}x"
        lines.append(f"| {v.kind} | {c['verdict']} | {c['size']} | {c['p50']} | {c['speedup']} | {c['accuracy']} | "
                     f"{_budget_text(v.budget)}; {rule} | {_cell('; '.join(v.reasons)) or '-'} |")
    lines += ["", "| variant | output | cosine | cosine_min | top1 | top1_decisive (rows) | top5 | max_abs | nonfinite |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, outputs in [("fp32", r.fp32_accuracy)] + [(v.kind, v.accuracy) for v in r.variants]:
        for o in outputs:
            lines.append(f"| {name} | {o.name} | {_cos(o.cosine)} | {_cos(o.cosine_min)} | {_pct(o.top1)} | "
                         f"{_pct(o.top1_decisive)} ({o.decisive_rows}/{o.rows}) | {_pct(o.top5)} | {short(o.max_abs)} | "
                         f"{o.nonfinite} |")
    for v in r.variants:
        lines += _variant_details(v)
    for n in r.notes:
        lines.append(f"\n> {n}")
    return lines


def _cos(x: float | None) -> str:
    return "-" if x is None else f"{x:.6g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.2%}"


def _variant_details(v) -> list[str]:
    if not v.method:
        return []
    lines = ["", f"### {v.kind}", ""]
    if v.method:
        lines.append(f"{v.method}; built in {v.build_s:.2f} s.")
    ops = v.details.get("quantized_ops")
    if ops:
        lines.append("quantised ops: " + ", ".join(f"{k} {n}" for k, n in ops.items()))
    if "engine_build_s" in v.details:
        lines.append(f"TensorRT engine build: {v.details['engine_build_s']:.2f} s")
    if v.kept_fp32:
        lines += ["", "| kept fp32 | op | why |", "| --- | --- | --- |"]
        lines += [f"| {k.name} | {k.op_type} | {k.kind}: {_cell(k.reason)} |" for k in v.kept_fp32[:50]]
    mobile = v.details.get("mobile")
    if mobile:
        lines += ["", "| mobile EP | suitable | supported nodes | partitions | with fixed shapes |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {e['ep']} | {e['suitability']} | {e['supported_nodes']}/{e['nodes']} | {e['partitions']} | "
                  f"{e['with_fixed_shapes'] or '-'} |" for e in mobile["eps"]]
        lines.append(f"\nrecommendation: {mobile['recommendation']}")
    lines += [f"\n> {n}" for n in v.notes]
    return lines


def _simplifiers_markdown(s) -> list[str]:
    """Every simplifier tried (``--simplifier auto``) and the op counts the kept one changed."""
    if s is None or (not s.candidates and not s.op_diff):
        return []
    lines = ["", f"kept: {s.tool or 'the input'}" + ("; op counts changed: "
             + ", ".join(f"{k} {n:+d}" for k, n in s.op_diff.items()) if s.op_diff else "")]
    if s.candidates:
        lines += ["", "| simplifier | ran | nodes | weights | seconds | parity | op counts changed |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for c in s.candidates:
            parity = "-" if c.parity is None else ("✓" if c.parity else "✗")
            diff = ", ".join(f"{k} {n:+d}" for k, n in c.op_diff.items()) or "-"
            lines.append(f"| {c.tool} | {'yes' if c.ok else _cell('no: ' + (c.detail or ''))} | {c.nodes} | "
                         f"{_mb(c.weight_bytes)} | {c.seconds:.2f} | {parity} | {_cell(diff)} |")
    return lines
