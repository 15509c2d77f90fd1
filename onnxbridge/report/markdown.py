"""The Markdown report: for pull requests and terminals; lays out the sections of ``report/registry.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..options import BUDGET_CEILINGS, BUDGET_FLOORS, Budget
from ..results.variants import VariantStatus
from .numbers import short
from .section import Bullets, RenderContext, Section, Text

if TYPE_CHECKING:
    from ..results import OutputParity, Report
    from ..results.table import Table
    from .section import ReportSections

__all__ = [
    "to_markdown",
    "lay_out",
    "validation_markdown",
    "localization_markdown",
    "variants_markdown",
    "AXIS_HEADERS",
    "axis_rows",
    "case_mark",
    "variant_cells",
    "table_markdown",
    "VARIANT_VERDICTS",
]

AXIS_HEADERS = ("axis", "export size", "declared", "exporter recorded", "smallest the source runs", "outcome", "why")


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("✓ pass" if ok else "✗ FAIL")


def _span(r) -> str:
    return "-" if r is None else f"{r[0]}..{'' if r[1] is None else r[1]}"


def axis_rows(v) -> list[list[str]]:
    """One row per dynamic axis of a ParityReport (plain text; the renderers escape it)."""
    return [
        [
            a.axis,
            str(a.export_size),
            _span(a.declared),
            _span(a.exported),
            "-" if a.smallest_runnable is None else str(a.smallest_runnable),
            a.outcome.value.replace("_", " "),
            a.note or a.guard or "-",
        ]
        for a in v.axes
    ]


def case_mark(case) -> str:
    """How a case that did not compare reads: listed (the source cannot run it) or failed."""
    return "– not compared" if case.kind.value == "source_limit" else "✗"


def table_markdown(table: Table) -> str:
    """A :class:`Table` as Markdown, every cell made safe."""
    return "\n".join(
        ["| " + " | ".join(_cell(h) for h in table.headers) + " |", "|" + " --- |" * len(table.headers)]
        + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    )


def oracle_note(o: OutputParity) -> str:
    """The precision oracle's three distances and the masked positions of one output, when there are any."""
    note = ""
    if o.oracle is not None:
        note += (
            f" oracle{' (numerically sensitive)' if o.oracle.decided else ''}: source vs fp64 "
            f"{short(o.oracle.source_vs_fp64)}, ONNX vs fp64 {short(o.oracle.onnx_vs_fp64)}, "
            f"ONNX vs source {short(o.oracle.onnx_vs_source)}"
        )
    if o.masked_positions:
        note += f" {o.masked_positions} masked position(s) not compared"
    return note


def _cell(text: str) -> str:
    """Text safe inside one Markdown table cell: no pipes, no line breaks, not endless."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= 300 else text[:297] + "..."


def to_markdown(report: Report, sections: ReportSections, ctx: RenderContext | None = None) -> str:
    """A Markdown summary: the run's facts, then every section of ``sections`` that has something to say."""
    ctx = ctx or RenderContext()
    conv = report.conversion
    head = "done" if report.passed is None else _verdict(report.passed)
    lines = [f"# onnxbridge {report.command}: {head}", ""]
    rows = [
        ("source", report.source),
        ("framework", report.framework or (conv.framework if conv else None)),
        ("output", report.output),
        ("route", conv.route if conv else None),
        ("opset", conv.opset if conv else None),
    ]
    lines += ["| | |", "| --- | --- |"] + [f"| {k} | `{v}` |" for k, v in rows if v is not None]
    for section in sections:
        if section.markdown is not None:
            lines += section.markdown(report, ctx)
        elif section.build is not None and (built := section.build(report)) is not None:
            lines += lay_out(built)
    return "\n".join(lines) + "\n"


def lay_out(section: Section) -> list[str]:
    """A typed section as Markdown: a heading, then each block."""
    lines = ["", f"## {section.title}"]
    for block in section.blocks:
        lines.append("")
        if isinstance(block, Text):
            lines.append(block.text)
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items]
        else:
            lines.append(table_markdown(block))
    return lines


def validation_markdown(report: Report, ctx: RenderContext) -> list[str]:
    """The validation section: provider, tolerances, every case and output, dynamic axes, placement."""
    v = report.validation
    if v is None:
        return []
    lines = [
        "",
        "## Validation",
        "",
        f"reference: {v.reference}; provider requested `{v.provider_requested}`, "
        f"used `{v.provider_used}`; {v.summary()}",
        "",
    ]
    if v.tolerances:
        lines += ["| output | dtype | atol | rtol | from |", "| --- | --- | --- | --- | --- |"]
        lines += [
            f"| {n} | {t.dtype or '-'} | {short(t.atol)} | {short(t.rtol)} | {t.source or 'default'} |"
            for n, t in v.tolerances.items()
        ]
        lines.append("")
    lines += [
        "| case | output | shape | max_abs | max_rel | mean_abs | cosine | top-1 | atol | rtol | result |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in v.cases:
        if c.error:
            lines.append(f"| {c.label} | - | - | - | - | - | - | - | - | - | {case_mark(c)} {_cell(c.error)} |")
        for o in c.outputs:
            extra = (
                f" {o.mismatched} off, worst at {list(o.worst_index)}"
                if (not o.passed and o.worst_index is not None and not o.error)
                else ""
            )
            extra += oracle_note(o)
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
    return lines


def localization_markdown(report: Report, ctx: RenderContext) -> list[str]:
    """Where it diverges (``ctx.plot_file``: the per-layer plot written beside the report, linked from it)."""
    if report.localization is None:
        return []
    from .divergence import markdown_section

    return markdown_section(report.localization, ctx.plot_file)


def variants_markdown(report: Report, ctx: RenderContext) -> list[str]:
    return _variants_markdown(report.variants)


VARIANT_VERDICTS = {
    VariantStatus.PASSED: "✓ PASS",
    VariantStatus.REFUSED: "✗ FAIL (not written)",
    VariantStatus.FORCED: "✗ FAIL (written: --write-failed)",
    VariantStatus.UNAVAILABLE: "✗ unavailable",
}
_GATED = BUDGET_FLOORS + BUDGET_CEILINGS


def _mb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1e6:.3g} MB"


def _x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def variant_cells(v) -> dict[str, str]:
    """Short texts for one variant (shared by the Markdown, HTML and terminal tables)."""
    g = v.generation
    acc = (
        f"token_agreement {g.token_agreement:.4g} ({g.prompts} prompts x {g.new_tokens} tokens), "
        f"logit_drift {g.logit_drift:.3g}, perplexity_ratio {g.perplexity_ratio:.4g} "
        f"({g.perplexity:.4g} vs fp32 {g.perplexity_fp32:.4g})"
        if g is not None
        else ""
    ) or ", ".join(
        f"{m} {_cos(w) if m != 'nonfinite' else int(w)}"
        for m in _GATED
        if (w := v.worst(m)) is not None and (m in v.budget or m in ("top1", "cosine"))
    )
    speed = f"{_x(v.speedup_vs_fp32)} fp32" + (f", {_x(v.speedup_vs_eager)} eager" if v.speedup_vs_eager else "")
    return {
        "verdict": VARIANT_VERDICTS[v.status],
        "size": f"{_mb(v.size_bytes)} ({_x(v.size_ratio)})" if v.size_bytes else "-",
        "p50": f"{v.latency.p50:.3g} ms" if v.latency else "-",
        "speedup": speed if v.latency else "-",
        "accuracy": acc or "-",
    }


def _budget_text(budget: dict) -> str:
    return Budget(tuple(budget.items())).describe()


def _variants_markdown(r) -> list[str]:
    """The variants section: one row per variant, then what each builder did and kept."""
    if r is None:
        return []
    base, eager = r.fp32_latency, r.eager_latency
    lines = [
        "",
        "## Variants",
        "",
        f"reference: {r.reference}; provider requested `{r.provider_requested}`, used `{r.provider_used}`; "
        f"inputs: {r.inputs}; shapes {', '.join(f'{k} {list(v)}' for k, v in r.shapes.items())}.",
        "",
        f"fp32: {_mb(r.fp32_size_bytes)}, p50 {base.p50:.3g} ms" if base else f"fp32: {_mb(r.fp32_size_bytes)}",
    ]
    if eager is not None and base is not None:
        lines[-1] += f"; the source's eager model p50 {eager.p50:.3g} ms (fp32 ONNX {_x(eager.p50 / base.p50)} eager)"
    t = r.timing
    if t:
        lines += [
            "",
            f"Timing: p50 of {t.get('rounds')} interleaved round(s) x {t.get('runs_per_round')} runs after "
            f"{t.get('warmup')} warm-up, every variant beside fp32 in the same run"
            + (f"; load average {', '.join(str(x) for x in r.load_average)}" if r.load_average else "")
            + ".",
        ]
    on_generation = any(v.generation is not None for v in r.variants)
    lines += [
        "",
        "Generation gate: each copy's budget below (defaults per variant, `--budget` overrides); "
        "`token_agreement` is the share of greedy steps where the copy, fed fp32's tokens, picks fp32's token; "
        "`logit_drift` the largest change of a logit over the range (max - min) of fp32's logits at that step; "
        "`perplexity_ratio` the copy's perplexity over the text divided by fp32's."
        if on_generation
        else f"Accuracy gate: each variant's budget below (defaults per variant, `--budget` overrides); "
        f"`top1_decisive` is argmax agreement over rows whose reference top-2 gap is at least "
        f"{r.decisive_margin:g} row standard deviations (near-ties flip under any rounding); `top1`, plain "
        f"argmax agreement per row (per position for sequence outputs), is reported beside it.",
        "",
        "| variant | verdict | size | p50 | speed-up | worst accuracy | budget | why |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for v in r.variants:
        c = variant_cells(v)
        rule = "not gated on speed" if v.min_speedup is None else f"speed >= {v.min_speedup:g}x"
        lines.append(
            f"| {v.kind} | {c['verdict']} | {c['size']} | {c['p50']} | {c['speedup']} | {c['accuracy']} | "
            f"{_budget_text(v.budget)}; {rule} | {_cell('; '.join(v.reasons)) or '-'} |"
        )
    if r.fp32_accuracy or any(v.accuracy for v in r.variants):
        lines += [
            "",
            "| variant | output | cosine | cosine_min | top1 | top1_decisive (rows) | top5 | max_abs | nonfinite |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
    for name, outputs in [("fp32", r.fp32_accuracy)] + [(v.kind, v.accuracy) for v in r.variants]:
        for o in outputs:
            lines.append(
                f"| {name} | {o.name} | {_cos(o.cosine)} | {_cos(o.cosine_min)} | {_pct(o.top1)} | "
                f"{_pct(o.top1_decisive)} ({o.decisive_rows}/{o.rows}) | {_pct(o.top5)} | {short(o.max_abs)} | "
                f"{o.nonfinite} |"
            )
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
    if v.generation is not None:
        g = v.generation
        first = [f for f in g.first_divergence if f is not None]
        lines.append(
            f"judged on {g.eval_text}: a free greedy run of the copy "
            + (
                f"leaves fp32's at step {min(first)} ({len(first)}/{g.prompts} prompts)"
                if first
                else "never leaves fp32's"
            )
            + f"; largest logit change {short(g.max_abs_drift)}; relative logit drift per step (max over prompts): "
            + " ".join(f"{d:.2g}" for d in g.drift_per_step)
        )
    ops = v.details.get("quantized_ops")
    if ops:
        lines.append("quantised ops: " + ", ".join(f"{k} {n}" for k, n in ops.items()))
    if "engine_build_s" in v.details:
        lines.append(f"TensorRT engine build: {v.details['engine_build_s']:.2f} s")
    if v.kept_fp32:
        lines += ["", "| kept fp32 | op | why |", "| --- | --- | --- |"]
        lines += [f"| {k.name} | {k.op_type} | {k.kind}: {_cell(k.reason)} |" for k in v.kept_fp32[:50]]
    table = v.table
    if table is not None:
        lines += ["", table_markdown(table)]
    lines += [f"\n> {n}" for n in v.notes]
    return lines
