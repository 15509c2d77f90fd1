"""The HTML report's "On the graph" section: links to the overlay files, their legends, the command that
opens the viewer, and the picture of the first divergence's neighbourhood."""

from __future__ import annotations

from html import escape

from .beside import OverlayIndex

__all__ = ["overlay_section"]


def overlay_section(index: OverlayIndex, report_name: str) -> str:
    """HTML for ``index`` (overlay files beside the report ``report_name``)."""
    items = []
    for f in index.files:
        swatches = " ".join(f"<span style='background:{escape(i.color)};padding:0 .5em;border:1px solid #999'>"
                            f"&nbsp;</span>&nbsp;{escape(i.meaning)}" for i in f.legend)
        items.append(f"<li><a href='{escape(f.path.name)}'>{escape(f.path.name)}</a>: {escape(f.title)} per node "
                     f"({escape(f.summary)})<br><small>{swatches}</small></li>")
    out = ("<h2 id='graph'>On the graph</h2><p>Node data for Google's Model Explorer, written beside this report. "
           f"Open them on the model with:</p><pre>onnxbridge view {escape(str(index.model))} --report "
           f"{escape(report_name)}</pre><ul>{''.join(items)}</ul>")
    picture = _picture(index)
    if picture:
        out += picture
    return out


def _picture(index: OverlayIndex) -> str:
    import json

    import onnx

    from .beside import first_divergence
    from .neighbourhood import neighbourhood, neighbourhood_svg
    from .nodedata import OverlayValue

    first = first_divergence(index)
    div = next((f for f in index.files if f.kind == "divergence"), None)
    if first is None or div is None or not index.model.is_file():
        return ""
    model = onnx.load(str(index.model), load_external_data=False)
    nb = neighbourhood(model, list(div.marked))
    if nb is None:
        return ""
    (graph,) = json.loads(div.path.read_text(encoding="utf-8")).values()
    values = {k: OverlayValue(k, v["value"], v["bgColor"], k in div.marked) for k, v in graph["results"].items()}
    svg = neighbourhood_svg(nb, values, f"first divergence {first} and its inputs, two levels up")
    more = f"; {nb.left_out} more input(s) left out" if nb.left_out else ""
    return (f"<figure>{svg}<figcaption>The first diverging node <code>{escape(first)}</code> (thick border) and "
            f"its inputs two levels up, coloured as the divergence overlay; numbers: error / tolerance"
            f"{more}.</figcaption></figure>")
