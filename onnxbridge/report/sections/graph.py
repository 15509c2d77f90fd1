"""On the graph: the overlay files written beside the report, their legends, the command that opens them in
Model Explorer and (HTML) the picture of the first divergence's neighbourhood."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..section import RenderContext, ReportSection

if TYPE_CHECKING:
    from ...results import Report


def graph_markdown(report: Report, ctx: RenderContext) -> list[str]:
    index = ctx.overlays
    if index is None:
        return []
    lines = [
        "",
        "## On the graph",
        "",
        "Node data for Google's Model Explorer, written beside this report; open it with",
        "",
        f"    onnxbridge view {index.model} --report {ctx.report_name}",
        "",
    ]
    lines += [
        f"- [{f.path.name}]({f.path.name}): {f.title} per node ({f.summary}); "
        + ", ".join(f"{i.color} {i.meaning}" for i in f.legend)
        for f in index.files
    ]
    return lines


def graph_html(report: Report, ctx: RenderContext) -> str:
    if ctx.overlays is None:
        return ""
    from ...overlays.report_section import overlay_section

    return overlay_section(ctx.overlays, ctx.report_name)


SECTION = ReportSection("graph", markdown=graph_markdown, html=graph_html)
