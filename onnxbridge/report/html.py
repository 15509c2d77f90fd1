"""The HTML report: one self-contained page for people.

Everything is inline (CSS, SVG plots drawn with matplotlib when it is installed); a
Content-Security-Policy forbids the page from fetching anything, so it reads the same offline,
from a CI artifact or an e-mail attachment. The run's facts, then the sections of ``report/registry.py``:
typed ones laid out by :func:`lay_out`, and the validation (tolerances, every case, error histograms,
placement), localisation and variants sections drawn here.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..options import BUDGET_CEILINGS
from ..options.providers import CPU, CUDA, TENSORRT, provider_label
from .figures import figure as _figure
from .figures import svg as _svg
from .markdown import AXIS_HEADERS, axis_rows, case_mark, oracle_note, variant_cells
from .numbers import short
from .section import Bullets, RenderContext, Section, Text

if TYPE_CHECKING:
    from ..results import Localization, ParityReport, Placement, Report
    from .section import ReportSections

__all__ = [
    "to_html",
    "lay_out",
    "validation_html",
    "localization_html",
    "variants_html",
    "histogram_svg",
    "placement_svg",
]

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#fdecea}.pass{color:#1a7f37;font-weight:600}.fail-t{color:#c62828;font-weight:600}
.badge{display:inline-block;padding:.15em .6em;border-radius:.3em;color:#fff;font-weight:600}
.badge.ok{background:#1a7f37}.badge.bad{background:#c62828}.badge.none{background:#777}
.notes li{margin:.3em 0}.plots{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0;border:1px solid #eee;padding:.5em}figcaption{font-size:.85em;color:#555}
code{background:#f4f4f4;padding:0 .2em}
"""

_BIN_LABELS = ("0",) + tuple(f"≤1e{e}" for e in range(-9, 3)) + (">1e2",)


def _e(x: object) -> str:
    return html.escape("" if x is None else str(x))


def _verdict(ok: bool | None) -> str:
    if ok is None:
        return "<span class='badge none'>not validated</span>"
    return "<span class='badge ok'>PASS</span>" if ok else "<span class='badge bad'>FAIL</span>"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    body = []
    for i, row in enumerate(rows):
        cls = f" class='{row_classes[i]}'" if i < len(row_classes) and row_classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(row) + "</tr>")
    return f"<table>{thead}<tbody>{''.join(body)}</tbody></table>"


def _td(x: object, num: bool = False) -> str:
    return f"<td class='num'>{x}</td>" if num else f"<td>{x}</td>"


# ------------------------------------------------------------------------------------ plots
def histogram_svg(name: str, counts: Sequence[int], edges: Sequence[float], atol: float, salt: str) -> str | None:
    """Bars of |got - ref| per decade, summed over cases; bins above ``atol`` in red. None without matplotlib."""
    fig = _figure(5.2, 2.4)
    if fig is None:
        return None
    ax = fig.add_subplot()
    colors = [
        "#c62828" if i > 0 and edges[i - 1] >= atol and atol >= 0 and counts[i] else "#2e7d32"
        for i in range(len(counts))
    ]
    xs = range(len(counts))
    ax.bar(xs, counts, color=colors)
    ax.set_xticks(list(xs), _BIN_LABELS[: len(counts)], rotation=60, fontsize=7)
    if any(counts):
        ax.set_yscale("symlog", linthresh=1)
    ax.set_ylabel("elements", fontsize=8)
    ax.set_xlabel("|onnx − reference|", fontsize=8)
    # the bin whose upper edge first reaches atol
    cut = next((i for i in range(1, len(edges)) if edges[i] >= atol), len(counts) - 1)
    ax.axvline(cut + 0.5, color="#555", linestyle="--", linewidth=1)
    ax.text(cut + 0.55, ax.get_ylim()[1] * 0.5 if any(counts) else 0.5, f"atol {atol:g}", fontsize=7, color="#555")
    ax.set_title(name, fontsize=9)
    ax.tick_params(axis="y", labelsize=7)
    return _svg(fig, salt)


def placement_svg(placement: Placement, salt: str) -> str | None:
    """Nodes per op type, one stacked bar per op, one colour per provider. None without matplotlib."""
    if not placement.by_op:
        return None
    ops = sorted(placement.by_op, key=lambda o: -sum(placement.by_op[o].values()))[:25]
    fig = _figure(6.0, 0.6 + 0.22 * len(ops))
    if fig is None:
        return None
    ax = fig.add_subplot()
    providers = list(placement.by_provider)
    palette = {CPU.ort: "#1565c0", CUDA.ort: "#2e7d32", TENSORRT.ort: "#6a1b9a"}
    left = [0] * len(ops)
    for p in providers:
        vals = [placement.by_op[o].get(p, 0) for o in ops]
        ax.barh(range(len(ops)), vals, left=left, label=provider_label(p), color=palette.get(p, "#ef6c00"))
        left = [a + b for a, b in zip(left, vals)]
    ax.set_yticks(range(len(ops)), ops, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("nodes", fontsize=8)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=7, loc="lower right")
    return _svg(fig, salt)


# ---------------------------------------------------------------------------------- sections
def _facts(report: Report) -> str:
    from .._version import __version__

    conv = report.conversion
    rows = [
        ("command", report.command),
        ("source", report.source),
        ("framework", report.framework or (conv.framework if conv else None)),
        ("output", report.output),
        ("route", conv.route if conv else None),
        ("opset", conv.opset if conv else None),
        ("onnxbridge", __version__),
    ]
    return _table(["", ""], [[_td(_e(k)), _td(f"<code>{_e(v)}</code>")] for k, v in rows if v is not None])


def _tolerance_section(v: ParityReport) -> str:
    rows = [
        [
            _td(_e(n)),
            _td(_e(t.dtype)),
            _td(short(t.atol), True),
            _td(short(t.rtol), True),
            _td(_e(t.source or "default")),
        ]
        for n, t in v.tolerances.items()
    ]
    return "<h2>Tolerances</h2><p>An element passes when |onnx − reference| ≤ atol + rtol·|reference|.</p>" + _table(
        ["output", "dtype", "atol", "rtol", "from"], rows
    )


def _cases_section(v: ParityReport) -> str:
    rows, classes = [], []
    for c in v.cases:
        shapes = ", ".join(f"{k} {list(s)}" for k, s in c.shapes.items())
        if c.error:
            listed = case_mark(c) != "✗"
            rows.append(
                [
                    _td(_e(c.label)),
                    _td(_e(shapes)),
                    _td("-"),
                    f"<td colspan='9'>{_e(c.error)}</td>",
                    _td(_e(case_mark(c)) if listed else "<span class='fail-t'>✗ FAIL</span>"),
                ]
            )
            classes.append("" if listed else "fail")
        for o in c.outputs:
            topk = "-"
            if o.top1_agreement is not None:
                topk = f"{o.top1_agreement:.0%}" + (f" / {o.topk_agreement:.0%}@{o.topk}" if o.topk else "")
            worst = _e(list(o.worst_index)) if o.worst_index is not None else "-"
            detail = " ".join(_e(x) for x in (o.error, o.nan_or_inf, oracle_note(o).strip()) if x)
            rows.append(
                [
                    _td(_e(c.label)),
                    _td(_e(shapes)),
                    _td(_e(o.name)),
                    _td(short(o.max_abs), True),
                    _td(short(o.max_rel), True),
                    _td(short(o.mean_abs), True),
                    _td(short(o.cosine), True),
                    _td(f"{o.mismatched}", True),
                    _td(worst),
                    _td(topk),
                    _td(f"{short(o.atol)} / {short(o.rtol)}"),
                    _td(detail or "-"),
                    _td("<span class='pass'>✓ pass</span>" if o.passed else "<span class='fail-t'>✗ FAIL</span>"),
                ]
            )
            classes.append("" if o.passed else "fail")
    headers = [
        "case",
        "inputs",
        "output",
        "max_abs",
        "max_rel",
        "mean_abs",
        "cosine",
        "off",
        "worst at",
        "top-1 / top-k",
        "atol / rtol",
        "detail",
        "result",
    ]
    return "<h2>Every case and output</h2>" + _table(headers, rows, classes)


def _histograms(v: ParityReport) -> str:
    sums: dict[str, list[int]] = {}
    atols: dict[str, float] = {}
    for c in v.cases:
        for o in c.outputs:
            if o.error_histogram is None:
                continue
            acc = sums.setdefault(o.name, [0] * len(o.error_histogram))
            for i, n in enumerate(o.error_histogram):
                acc[i] += n
            atols[o.name] = o.atol
    if not sums:
        return ""
    parts, fallback_rows = [], []
    for i, (name, counts) in enumerate(sums.items()):
        svg = histogram_svg(name, counts, v.histogram_edges, atols[name], salt=f"hist{i}")
        if svg is None:
            fallback_rows.append([_td(_e(name))] + [_td(str(n), True) for n in counts])
        else:
            parts.append(
                f"<figure>{svg}<figcaption>{_e(name)}: |onnx − reference| over every case; "
                f"red bins lie above atol {atols[name]:g}</figcaption></figure>"
            )
    out = "<h2>Error histograms</h2>"
    if parts:
        out += f"<div class='plots'>{''.join(parts)}</div>"
    if fallback_rows:
        out += "<p>(install matplotlib, <code>pip install 'onnxbridge[report]'</code>, for plots)</p>" + _table(
            ["output"] + list(_BIN_LABELS), fallback_rows
        )
    return out


def _placement_section(v: ParityReport) -> str:
    p = v.placement
    head = (
        f"<h2>Provider placement</h2><p>Asked for <code>{_e(v.provider_requested)}</code>; the session ran on "
        f"<code>{_e(v.provider_used)}</code> (session providers: {_e(', '.join(v.providers))}).</p>"
    )
    if p is None:
        return head + "<p>Node placement was not recorded for this run.</p>"
    head += (
        f"<p>{_e(p.summary())}. Nodes are counted after ONNX Runtime's graph optimisations; "
        f"{p.shape_on_cpu} small shape computation(s) kept on CPU on purpose are not fallbacks.</p>"
    )
    rows = [[_td(_e(prov)), _td(str(n), True)] for prov, n in p.by_provider.items()]
    out = head + _table(["provider", "nodes"], rows)
    svg = placement_svg(p, salt="placement")
    if svg:
        out += f"<figure>{svg}<figcaption>nodes per op type and provider</figcaption></figure>"
    else:
        op_rows = [
            [_td(_e(op)), _td(_e(", ".join(f"{provider_label(k)} {n}" for k, n in c.items())))]
            for op, c in p.by_op.items()
        ]
        out += _table(["op", "providers"], op_rows)
    if p.fallback:
        fb = [[_td(_e(n.name)), _td(_e(n.op_type)), _td(_e(n.provider))] for n in p.fallback]
        out += f"<h3>Nodes that fell back from {_e(p.target)} (policy: {_e(p.policy)})</h3>" + _table(
            ["node", "op", "ran on"], fb, ["fail"] * len(fb)
        )
    return out


def _variants_section(r) -> str:
    """One row per variant (verdict, size, p50, speed-ups, accuracy, budget, why), then per output."""
    if r is None:
        return ""
    base = r.fp32_latency
    head = (
        f"<h2>Variants</h2><p>reference: {_e(r.reference)}; provider requested <code>{_e(r.provider_requested)}"
        f"</code>, used <code>{_e(r.provider_used)}</code>; inputs: {_e(r.inputs)}.<br>fp32: "
        f"{r.fp32_size_bytes / 1e6:.3g} MB"
        + (f", p50 {base.p50:.3g} ms" if base else "")
        + (f"; eager p50 {r.eager_latency.p50:.3g} ms" if r.eager_latency else "")
        + (f"; load average {_e(', '.join(str(x) for x in r.load_average))}" if r.load_average else "")
        + f".<br><code>top1_decisive</code>: argmax agreement over rows whose reference top-2 gap is at least "
        f"{r.decisive_margin:g} row standard deviations; <code>top1</code>: plain argmax agreement.</p>"
    )
    rows, classes = [], []
    for v in r.variants:
        c = variant_cells(v)
        budget = ", ".join(f"{k} {'≤' if k in BUDGET_CEILINGS else '≥'} {x:g}" for k, x in v.budget.items())
        speed = "not gated" if v.min_speedup is None else f"≥ {v.min_speedup:g}x"
        rows.append(
            [
                _td(_e(v.kind)),
                _td(_e(c["verdict"])),
                _td(_e(c["size"])),
                _td(_e(c["p50"]), True),
                _td(_e(c["speedup"])),
                _td(_e(c["accuracy"])),
                _td(_e(f"{budget}; speed {speed}")),
                _td(_e("; ".join(v.reasons)) or "-"),
                _td(_e(v.path or "-")),
            ]
        )
        classes.append("" if v.passed else "fail")
    out = head + _table(
        ["variant", "verdict", "size", "p50", "speed-up", "worst accuracy", "budget", "why", "file"], rows, classes
    )
    acc = [
        [
            _td(_e(name)),
            _td(_e(o.name)),
            _td(short(o.cosine), True),
            _td(short(o.cosine_min), True),
            _td(short(o.top1), True),
            _td(f"{short(o.top1_decisive)} ({o.decisive_rows}/{o.rows})", True),
            _td(short(o.top5), True),
            _td(short(o.max_abs), True),
            _td(str(o.nonfinite), True),
        ]
        for name, outs in [("fp32", r.fp32_accuracy)] + [(v.kind, v.accuracy) for v in r.variants]
        for o in outs
    ]
    out += _table(
        ["variant", "output", "cosine", "cosine_min", "top1", "top1_decisive (rows)", "top5", "max_abs", "nonfinite"],
        acc,
    )
    for v in r.variants:
        if v.kept_fp32:
            out += f"<h3>{_e(v.kind)}: nodes kept in fp32</h3>" + _table(
                ["node", "op", "why"],
                [[_td(_e(k.name)), _td(_e(k.op_type)), _td(_e(f"{k.kind}: {k.reason}"))] for k in v.kept_fp32[:100]],
            )
        table = v.table
        if table is not None:
            out += f"<h3>{_e(v.kind)}</h3>" + _table(table.headers, [[_td(_e(c)) for c in row] for row in table.rows])
        notes = list(v.notes) + ([v.method] if v.method else [])
        if notes:
            out += f"<p><strong>{_e(v.kind)}</strong>: " + "<br>".join(_e(n) for n in notes) + "</p>"
    return out


def _divergence_table(loc: Localization) -> str:
    f = loc.first
    if f is None:
        return f"<p><strong>Nothing diverges beyond tolerance</strong> ({loc.compared} compared).</p>"
    rows = [
        ("first diverging " + f.kind, f"<code>{_e(f.name)}</code> [{_e(f.class_name)}], {_e(f.where)}"),
        (
            "error / tolerance",
            f"<strong>{short(f.score)}</strong> (max_abs {short(f.max_abs)}"
            + (f", inputs {short(f.input_score)})" if f.input_score is not None else ")"),
        ),
        ("at", f"<code>{_e(f.call_site)}</code> {_e(f.call_site.code)}" if f.call_site else None),
        ("defined at", f"<code>{_e(f.source)}</code>" if f.source else None),
        ("from module", f"<code>{_e(f.module)}</code>" if f.module else None),
        ("ONNX nodes", _e(", ".join(f.onnx_nodes[:20])) + (" ..." if len(f.onnx_nodes) > 20 else "")),
        ("also suspect", _e(", ".join(f.also_suspect)) if f.also_suspect else None),
        ("note", _e(f.note) if f.note else None),
    ]
    return _table(["", ""], [[_td(_e(k)), _td(v)] for k, v in rows if v], ["fail"])


def _stages_table(loc: Localization) -> str:
    if not loc.stages:
        return ""
    rows = [
        [
            _td(_e(s.stage)),
            _td(_e(s.model or "-")),
            _td(_e(s.provider)),
            _td(short(s.score), True),
            _td("-" if s.step_passed is None else f"{short(s.step_score)} ({'ok' if s.step_passed else 'changed'})"),
            _td(("✓ pass" if s.passed else "✗ FAIL") + (f" ({_e(s.error or s.note)})" if s.error or s.note else "")),
        ]
        for s in loc.stages
    ]
    return "<h3>Stages</h3>" + _table(
        ["stage", "model", "provider", "error / tolerance vs source", "vs the stage before", "result"],
        rows,
        ["" if s.passed else "fail" for s in loc.stages],
    )


def _layers_table(loc: Localization, limit: int = 500) -> str:
    from .divergence import highlighted

    ordered = sorted(loc.layers, key=lambda c: c.position)[:limit]
    if not ordered:
        return ""
    hit = highlighted(loc)
    rows = [
        [
            _td(str(c.position), True),
            _td(f"<code>{_e(c.name)}</code>"),
            _td(_e(c.kind)),
            _td(str(c.depth), True),
            _td(short(c.score), True),
            _td(short(c.max_abs), True),
            _td("-" if c.passed is None else "✓" if c.passed else "✗"),
        ]
        for c in ordered
    ]
    return (
        "<details><summary>every compared layer</summary>"
        + _table(
            ["#", "layer", "class", "depth", "error / tolerance", "max_abs", "result"],
            rows,
            ["fail" if c is hit else "" for c in ordered],
        )
        + "</details>"
    )


def _localization_section(loc: Localization) -> str:
    """Where it diverges: the first diverging place, the plot, the stages, every check, the commands."""
    from .divergence import axis_label, divergence_figure

    stage = (
        f"Stage <code>{_e(loc.broken_stage)}</code> is the first to break parity"
        if loc.broken_stage
        else "No stage breaks parity"
    )
    out = f"<h2 id='where'>Where it diverges</h2><p>{stage} (case <code>{_e(loc.case)}</code>).</p>"
    out += _divergence_table(loc)
    fig = divergence_figure(loc)
    if fig is not None:
        out += (
            f"<figure>{_svg(fig, 'where')}<figcaption>error / tolerance of every compared "
            f"{_e(axis_label(loc))}; red: over tolerance; ringed: the first divergence</figcaption></figure>"
        )
    out += _stages_table(loc) + _layers_table(loc)
    cmds = [loc.command] + ([loc.repro.command] if loc.repro else [])
    out += "<h3>Reproduce</h3><pre>" + "\n".join(_e(c) for c in cmds) + "</pre>"
    if loc.repro is not None:
        r = loc.repro
        out += (
            f"<p>Minimal failing subgraph: <code>{_e(r.onnx)}</code> + <code>{_e(r.fixtures)}</code>, {r.nodes} "
            f"node(s), {r.bytes} bytes; {'reproduces' if r.reproduces else 'does <strong>not</strong> reproduce'} "
            f"on its own (error / tolerance {short(r.score)}).</p>"
        )
    out += (
        f"<p>Compared {loc.compared} of {loc.total} in {loc.passes} pass(es), {loc.values_marked} value(s) "
        f"marked (budget {loc.budget_bytes / 2**20:.0f} MB), {loc.seconds:.2f} s.</p>"
    )
    if loc.notes:
        out += "<ul class='notes'>" + "".join(f"<li>{_e(n)}</li>" for n in loc.notes) + "</ul>"
    return out


def lay_out(section: Section) -> str:
    """A typed section as HTML: a heading, then each block, every text escaped."""
    anchor = f" id='{_e(section.anchor)}'" if section.anchor else ""
    out = [f"<h2{anchor}>{_e(section.title)}</h2>"]
    for block in section.blocks:
        if isinstance(block, Text):
            out.append(f"<p>{_e(block.text)}</p>")
        elif isinstance(block, Bullets):
            out.append("<ul class='notes'>" + "".join(f"<li>{_e(i)}</li>" for i in block.items) + "</ul>")
        else:
            out.append(
                _table(
                    block.headers,
                    [[_td(_e(c)) for c in row] for row in block.rows],
                    ["fail" if f else "" for f in block.failed],
                )
            )
    return "".join(out)


def validation_html(report: Report, ctx: RenderContext) -> str:
    """Verdict, broken axes, tolerances, every case, error histograms, placement, the validation's notes."""
    v = report.validation
    if v is None:
        return ""
    parts = [
        f"<h2>Validation</h2><p id='summary'><strong>{_e(v.summary())}</strong><br>reference: "
        f"{_e(v.reference)}; {len(v.cases)} case(s) in {v.seconds:.2f} s</p>"
    ]
    if v.broken_axes:
        items = "".join(
            f"<li>dynamic axis <code>{_e(a)}</code> breaks at size(s) {_e(list(s))}</li>"
            for a, s in v.broken_axes.items()
        )
        parts.append(f"<ul class='notes'>{items}</ul>")
    if v.axes:
        parts.append(
            "<h2>Dynamic axes</h2>" + _table(AXIS_HEADERS, [[_td(_e(x)) for x in row] for row in axis_rows(v)])
        )
    if report.localization is not None:
        parts.append(
            f"<p><strong>{_e(report.localization.summary())}</strong> (<a href='#where'>where it diverges</a>)</p>"
        )
    parts += [_tolerance_section(v), _cases_section(v), _histograms(v), _placement_section(v)]
    if v.notes:
        parts.append("<ul class='notes'>" + "".join(f"<li>{_e(n)}</li>" for n in v.notes) + "</ul>")
    return "\n".join(p for p in parts if p)


def localization_html(report: Report, ctx: RenderContext) -> str:
    return "" if report.localization is None else _localization_section(report.localization)


def variants_html(report: Report, ctx: RenderContext) -> str:
    return _variants_section(report.variants)


def to_html(report: Report, sections: ReportSections, ctx: RenderContext | None = None) -> str:
    """The whole report as one HTML page that fetches nothing: the run's facts, then every section."""
    ctx = ctx or RenderContext()
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>onnxbridge {_e(report.command)}: {_e(report.source or '')}</title><style>{_CSS}</style></head><body>",
        f"<h1>onnxbridge {_e(report.command)} {_verdict(report.passed)}</h1>",
        _facts(report),
    ]
    for section in sections:
        if section.html is not None:
            parts.append(section.html(report, ctx))
        elif section.build is not None and (built := section.build(report)) is not None:
            parts.append(lay_out(built))
    parts.append("</body></html>\n")
    return "\n".join(p for p in parts if p)
