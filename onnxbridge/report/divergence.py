"""The "where it diverges" section: the per-layer error along the model (a plot, and a text line for
terminals and Markdown), the first diverging layer, the stage table and the commands that reproduce it."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from .figures import figure
from .numbers import short

if TYPE_CHECKING:
    from ..results import LayerCheck, Localization

__all__ = ["divergence_figure", "highlighted", "sparkline", "markdown_section", "axis_label"]

_BARS = "▁▂▃▄▅▆▇█"
_FLOOR = 1e-6


def axis_label(loc: Localization) -> str:
    return loc.layer_unit


def highlighted(loc: Localization) -> LayerCheck | None:
    """The check to highlight: the diverging call (or value), else the first failing one."""
    if loc.first is not None:
        name = loc.first.reference_value if loc.first.kind == "node" else loc.first.name
        hit = next((c for c in loc.layers if c.name == name and c.passed is False), None)
        if hit is not None:
            return hit
    return next((c for c in sorted(loc.layers, key=lambda c: c.position) if c.passed is False), None)


def _scored(loc: Localization) -> list[tuple[LayerCheck, float]]:
    """The checks that carry a score, with it, in model order."""
    return sorted(((c, c.score) for c in loc.layers if c.score is not None), key=lambda p: p[0].position)


def _y(score: float, top: float) -> float:
    return top if not math.isfinite(score) else max(min(score, top), _FLOOR)


def divergence_figure(loc: Localization) -> Any:
    """Error / tolerance of every compared call or value along the model, failing ones red, the first
    diverging one ringed and named; None without matplotlib or without checks."""
    points = _scored(loc)
    fig = figure(7.6, 3.2) if points else None
    if fig is None:
        return None
    ax = fig.add_subplot()
    finite = [score for _, score in points if math.isfinite(score)]
    top = max(max(finite, default=1.0), 1.0) * 10
    xs = [c.position for c, _ in points]
    ys = [_y(score, top) for _, score in points]
    ax.plot(xs, ys, color="#bbb", linewidth=0.8, zorder=1)
    ax.scatter(
        xs,
        ys,
        s=[max(6, 36 - 8 * c.depth) for c, _ in points],
        zorder=3,
        c=["#c62828" if c.passed is False else "#2e7d32" for c, _ in points],
    )
    ax.axhline(1.0, color="#555", linestyle="--", linewidth=1)
    ax.text(xs[0], 1.15, "tolerance", fontsize=7, color="#555")
    ax.set_yscale("log")
    hit = highlighted(loc)
    if hit is not None:
        y = _y(hit.score or top, top)
        ax.scatter([hit.position], [y], s=160, facecolors="none", edgecolors="#c62828", linewidths=1.5, zorder=4)
        label = hit.name if loc.first is None or loc.first.kind == "node" else loc.first.name
        where = loc.first.call_site if loc.first is not None else None
        text = label + (f"\n{where.file.replace(chr(92), '/').rsplit('/', 1)[-1]}:{where.line}" if where else "")
        right = hit.position > (xs[0] + xs[-1]) / 2
        ax.annotate(
            text,
            (hit.position, y),
            xytext=(-12 if right else 12, -30),
            textcoords="offset points",
            fontsize=8,
            color="#c62828",
            ha="right" if right else "left",
            va="top",
            arrowprops={"arrowstyle": "-", "color": "#c62828", "linewidth": 0.8},
            bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "#c62828", "lw": 0.6, "alpha": 0.95},
        )
    ax.set_xlabel(axis_label(loc), fontsize=8)
    ax.set_ylabel("error / tolerance", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(f"{loc.candidate} vs {loc.reference}, case {loc.case}", fontsize=9)
    return fig


def sparkline(loc: Localization, width: int = 60) -> str:
    """The worst error / tolerance per stretch of the model as bars (▁ <= 1e-4 ... █ >= 100)."""
    points = _scored(loc)
    if not points:
        return ""
    step = max(1, math.ceil(len(points) / width))
    out = []
    for k in range(0, len(points), step):
        worst = max(score for _, score in points[k : k + step])
        level = 0.0 if worst <= 0 else 1.0 if not math.isfinite(worst) else (math.log10(worst) + 4) / 6  # 1e-4: 0
        out.append(_BARS[min(len(_BARS) - 1, max(0, int(level * (len(_BARS) - 1) + 0.5)))])
    return "".join(out)


def _divergence_lines(loc: Localization) -> list[str]:
    f = loc.first
    if f is None:
        return [
            f"**nothing diverges beyond tolerance** between `{loc.reference}` and `{loc.candidate}` "
            f"on case `{loc.case}` ({loc.compared} compared)."
        ]
    lines = [
        f"**first diverging {f.kind}**: `{f.name}` [{f.class_name}], {f.where}; error / tolerance "
        f"**{short(f.score)}** (max_abs {short(f.max_abs)}"
        + (f", inputs {short(f.input_score)})" if f.input_score is not None else ")"),
        "",
    ]
    if f.call_site:
        lines.append(f"- at `{f.call_site}`" + (f": `{f.call_site.code}`" if f.call_site.code else ""))
    if f.source:
        lines.append(f"- defined at `{f.source}`")
    if f.module:
        lines.append(f"- from module `{f.module}`")
    if f.reference_value:
        lines.append(f"- value `{f.reference_value}` in the reference, `{f.candidate_value}` in the candidate")
    if f.onnx_nodes:
        shown = ", ".join(f"`{n}`" for n in f.onnx_nodes[:12])
        lines.append(f"- ONNX nodes: {shown}" + (f" (+{len(f.onnx_nodes) - 12})" if len(f.onnx_nodes) > 12 else ""))
    if f.also_suspect:
        lines.append(
            f"- also suspect (ran just before it, no ONNX node of their own): "
            f"{', '.join(f'`{s}`' for s in f.also_suspect)}"
        )
    if f.note:
        lines.append(f"- {f.note}")
    return lines


def _stage_lines(loc: Localization) -> list[str]:
    if not loc.stages:
        return []
    lines = [
        "",
        "| stage | model | provider | error / tolerance vs source | vs the stage before | result |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in loc.stages:
        step = "-" if s.step_passed is None else f"{short(s.step_score)} ({'ok' if s.step_passed else 'changed'})"
        result = ("✓ pass" if s.passed else "✗ FAIL") + (f" ({s.error or s.note})" if s.error or s.note else "")
        lines.append(f"| {s.stage} | {s.model or '-'} | {s.provider} | {short(s.score)} | {step} | {result} |")
    return lines


def _nearby(loc: Localization, around: int = 6) -> list[LayerCheck]:
    """The checks around the highlighted one (the first ones when none is)."""
    ordered = sorted(loc.layers, key=lambda c: c.position)
    hit = highlighted(loc)
    k = ordered.index(hit) if hit is not None else 0
    return ordered[max(0, k - around) : k + around + 1]


def markdown_section(loc: Localization, plot_file: str | None = None) -> list[str]:
    """The section as Markdown lines; ``plot_file``: the plot written beside the report."""
    stage = (
        f"stage **`{loc.broken_stage}`** is the first to break parity" if loc.broken_stage else "no stage breaks parity"
    )
    lines = ["", "## Where it diverges", "", f"{stage} (case `{loc.case}`).", ""] + _divergence_lines(loc)
    lines += _stage_lines(loc)
    if plot_file:
        lines += ["", f"![error / tolerance per layer along the model]({plot_file})"]
    spark = sparkline(loc)
    if spark:
        lines += ["", f"error / tolerance along the model ({axis_label(loc)}; ▁ ≤ 1e-4, █ ≥ 100): `{spark}`"]
    rows = _nearby(loc)
    if rows:
        lines += [
            "",
            "| # | layer | class | depth | error / tolerance | max_abs | result |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {c.position} | `{c.name}` | {c.kind} | {c.depth} | {short(c.score)} | {short(c.max_abs)} | "
            f"{'-' if c.passed is None else '✓' if c.passed else '✗'} |"
            for c in rows
        ]
    lines += ["", "Reproduce:", "", "```bash", loc.command]
    if loc.repro is not None:
        r = loc.repro
        lines.append(
            f"{r.command}   # {r.nodes} node(s), {'reproduces' if r.reproduces else 'does NOT reproduce'}: "
            f"error / tolerance {short(r.score)}"
        )
    lines += [
        "```",
        "",
        f"Compared {loc.compared} of {loc.total} ({loc.not_mapped} without ONNX nodes of their own) "
        f"in {loc.passes} pass(es), {loc.values_marked} value(s) marked, budget "
        f"{loc.budget_bytes / 2**20:.0f} MB, {loc.seconds:.2f} s.",
    ]
    lines += [f"\n> {n}" for n in loc.notes]
    return lines
