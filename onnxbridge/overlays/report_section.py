"""The HTML report's "On the graph" section: links to the overlay files, their legends, the command that
opens the viewer, and the picture of the first divergence's neighbourhood."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .beside import OverlayIndex

__all__ = ["overlay_section"]


def overlay_section(index: OverlayIndex, report_name: str) -> str:
    """HTML for ``index`` (overlay files beside the report ``report_name``)."""
    items = []
    for f in index.files:
        swatches = " ".join(
            f"<span style='background:{escape(i.color)};padding:0 .5em;border:1px solid #999'>"
            f"&nbsp;</span>&nbsp;{escape(i.meaning)}"
            for i in f.legend
        )
        items.append(
            f"<li><a href='{escape(f.path.name)}'>{escape(f.path.name)}</a>: {escape(f.title)} per node "
            f"({escape(f.summary)})<br><small>{swatches}</small></li>"
        )
    out = (
        "<h2 id='graph'>On the graph</h2><p>Node data for Google's Model Explorer, written beside this report. "
        f"Open them on the model with:</p><pre>onnxbridge view {escape(str(index.model))} --report "
        f"{escape(report_name)}</pre><ul>{''.join(items)}</ul>"
    )
    picture = _picture(index)
    if picture:
        out += picture
    return out


def _picture(index: OverlayIndex) -> str:
    import onnx

    from .neighbourhood import neighbourhood, neighbourhood_svg

    div = next((o for o in index.overlays if o.kind == "divergence"), None)
    marked = [v.key for v in div.values if v.marked] if div is not None else []
    if not marked or not index.model.is_file():
        return ""
    nb = neighbourhood(onnx.load(str(index.model), load_external_data=False), marked)
    if nb is None:
        return ""
    values = div.values if div is not None else ()  # div is set: it marked the values above
    svg = neighbourhood_svg(
        nb, {v.key: v for v in values}, f"first divergence {marked[0]} and its inputs, two levels up"
    )
    more = f"; {nb.left_out} more input(s) left out" if nb.left_out else ""
    return (
        f"<figure>{svg}<figcaption>The first diverging node <code>{escape(marked[0])}</code> (thick border) "
        f"and its inputs two levels up, coloured as the divergence overlay; numbers: error / tolerance"
        f"{more}.</figcaption></figure>"
    )
