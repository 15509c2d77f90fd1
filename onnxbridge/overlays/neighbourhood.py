"""A small static picture of the first divergence: the failing node(s) and their inputs two levels up,
as an inline SVG (no matplotlib, nothing fetched), coloured as the divergence overlay colours them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from .nodedata import OverlayValue

__all__ = ["Box", "Neighbourhood", "neighbourhood", "neighbourhood_svg"]

_W, _H, _GAP_X, _GAP_Y, _PAD = 150, 44, 16, 40, 10
_MAX_PER_ROW = 8


@dataclass(frozen=True)
class Box:
    """One thing in the picture: a node (``key`` its name), a weight or a graph input."""

    key: str
    kind: str  # node | weight | input
    label: str
    detail: str


@dataclass(frozen=True)
class Neighbourhood:
    """Rows from the failing node(s) (row 0) up to their inputs' inputs; edges run (source, consumer)."""

    rows: tuple[tuple[Box, ...], ...]
    edges: tuple[tuple[str, str], ...]
    left_out: int = 0  # boxes past the per-row limit


def neighbourhood(model, nodes: Sequence[str], levels: int = 2) -> Neighbourhood | None:
    """The picture's contents in ``model`` (an ``onnx.ModelProto``) around ``nodes``; None when none is in it."""
    g = model.graph
    by_name = {(n.name or (n.output[0] if n.output else "")): n for n in g.node}
    producer = {o: k for k, n in by_name.items() for o in n.output if o}
    inits = {i.name: i for i in g.initializer}
    inputs = {i.name for i in g.input}
    start = [by_name[n] for n in nodes if n in by_name]
    if not start:
        return None
    placed: dict[str, int] = {}
    rows: list[list[Box]] = [[]]
    edges: list[tuple[str, str]] = []
    for k in nodes:
        if k in by_name and k not in placed:
            n = by_name[k]
            placed[k] = 0
            rows[0].append(Box(k, "node", n.op_type, k))
    frontier = [k for k in nodes if k in by_name]
    left_out = 0
    for level in range(1, levels + 1):
        row: list[Box] = []
        nxt: list[str] = []
        for consumer in frontier:
            for value in by_name[consumer].input:
                if not value:
                    continue
                if value in producer:
                    key, box = producer[value], None
                    if key not in placed:
                        box = Box(key, "node", by_name[key].op_type, key)
                        nxt.append(key)
                elif value in inits:
                    key = f"weight:{value}"
                    dims = "x".join(str(d) for d in inits[value].dims) or "scalar"
                    box = None if key in placed else Box(key, "weight", value, f"weight [{dims}]")
                else:
                    key = f"input:{value}"
                    box = None if key in placed else Box(key, "input", value, "graph input" if value in inputs else "")
                if box is not None:
                    if len(row) >= _MAX_PER_ROW:
                        left_out += 1
                        continue
                    placed[key] = level
                    row.append(box)
                if key in placed:
                    edges.append((key, consumer))
        rows.append(row)
        frontier = [k for k in nxt if k in placed]
        if not frontier:
            break
    return Neighbourhood(tuple(tuple(r) for r in rows if r), tuple(dict.fromkeys(edges)), left_out)


def neighbourhood_svg(nb: Neighbourhood, values: Mapping[str, OverlayValue], title: str = "") -> str:
    """The picture as an inline SVG: the farthest inputs on top, the failing node at the bottom."""
    rows = list(reversed(nb.rows))
    width = max(len(r) for r in rows) * (_W + _GAP_X) + 2 * _PAD
    height = len(rows) * (_H + _GAP_Y) + _PAD
    pos: dict[str, tuple[float, float]] = {}
    for i, row in enumerate(rows):
        x0 = (width - len(row) * (_W + _GAP_X) + _GAP_X) / 2
        for j, box in enumerate(row):
            pos[box.key] = (x0 + j * (_W + _GAP_X), _PAD + i * (_H + _GAP_Y))
    out = [
        (
            f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' height='{height:.0f}' "
            f"viewBox='0 0 {width:.0f} {height:.0f}' role='img' aria-label='{escape(title)}' class='neighbourhood'>"
        ),
        (
            "<defs><marker id='nbarrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7' markerHeight='7' "
            "orient='auto'><path d='M0,0 L10,5 L0,10 z' fill='#666'/></marker></defs>"
        ),
    ]
    for src, dst in nb.edges:
        if src in pos and dst in pos:
            (x1, y1), (x2, y2) = pos[src], pos[dst]
            out.append(
                f"<line x1='{x1 + _W / 2:.0f}' y1='{y1 + _H:.0f}' x2='{x2 + _W / 2:.0f}' y2='{y2:.0f}' "
                "stroke='#666' stroke-width='1.2' marker-end='url(#nbarrow)'/>"
            )
    for row in rows:
        for box in row:
            x, y = pos[box.key]
            v = values.get(box.key)
            fill = v.color if v is not None else ("#eeeeee" if box.kind != "node" else "#ffffff")
            stroke = "#000" if v is not None and v.marked else "#888"
            sw = 2.5 if v is not None and v.marked else 1
            text_color = "#fff" if fill in ("#b00020",) else "#111"
            score = "" if v is None else f" · {v.value:.3g}" if isinstance(v.value, float) else f" · {v.value}"
            out.append(
                f"<g><title>{escape(box.detail or box.label)}{escape(score)}</title>"
                f"<rect x='{x:.0f}' y='{y:.0f}' width='{_W}' height='{_H}' rx='6' fill='{fill}' "
                f"stroke='{stroke}' stroke-width='{sw}'/>"
                f"<text x='{x + _W / 2:.0f}' y='{y + 18:.0f}' font-size='13' text-anchor='middle' "
                f"fill='{text_color}' font-weight='bold'>{escape(_clip(box.label))}{escape(score)}</text>"
                f"<text x='{x + _W / 2:.0f}' y='{y + 35:.0f}' font-size='10' text-anchor='middle' "
                f"fill='{text_color}'>{escape(_clip(box.detail, 26))}</text></g>"
            )
    out.append("</svg>")
    return "".join(out)


def _clip(s: str, n: int = 20) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"
