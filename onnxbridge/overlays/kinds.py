"""The three overlay kinds, each built from a typed result: divergence (localisation), placement
(where ONNX Runtime ran each node) and time (ONNX Runtime's profiler)."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from .nodedata import LegendItem, Overlay, OverlayValue

if TYPE_CHECKING:
    from ..results import Localization, Placement
    from .profile import NodeProfile

__all__ = [
    "FAIL",
    "FALLBACK",
    "FIRST",
    "PASS",
    "divergence_overlay",
    "graph_node",
    "placement_from_report",
    "placement_overlay",
    "time_overlay",
]

FIRST, FAIL, NEAR, PASS = "#b00020", "#f4a261", "#ffe08a", "#b7e4c7"
TARGET, FALLBACK, OTHER = "#b7e4c7", "#e63946", "#a8dadc"
HOT, WARM, COOL = "#d62828", "#f77f00", "#fcbf49"


def _number(x: float) -> float | str:
    """A score as the node-data file can hold it: JSON has no inf / NaN, so those become labels."""
    return round(x, 6) if math.isfinite(x) else str(x)


def _known(keys: Collection[str] | None, key: str) -> bool:
    return keys is None or key in keys


def divergence_overlay(
    loc: Localization, graph: str, node_of: Mapping[str, str], modules: Mapping[str, tuple[str, ...]] | None = None
) -> Overlay | None:
    """Error / tolerance per node (the worst of its compared outputs; above 1 fails); the first
    divergence's ONNX nodes are marked.

    ``node_of``: node name or output value name -> node name, in the model shown. ``modules``: node name
    -> the module / layer calls it came from, innermost first (from the exporter's metadata): a node
    with no value of its own compared takes the score of the innermost call that was. None when there
    is nothing to show.
    """
    scores: dict[str, float] = {}
    by_layer: dict[str, float] = {}
    for layer in loc.layers:
        if layer.score is None:
            continue
        by_layer[layer.name] = float(layer.score)
        for key in layer.values or (layer.name,):
            node = node_of.get(key)
            if node is not None:
                scores[node] = max(scores.get(node, 0.0), float(layer.score))
    for node, calls in (modules or {}).items():
        if node not in scores:
            score = next((by_layer[c] for c in calls if c in by_layer), None)
            if score is not None:
                scores[node] = score
    values = {
        n: OverlayValue(n, _number(s), FAIL if not s <= 1 else NEAR if s > 0.1 else PASS) for n, s in scores.items()
    }
    first = loc.first if loc.diverges else None
    if first is not None:
        for node in first.onnx_nodes:
            if node in node_of.values():
                values[node] = OverlayValue(node, _number(float(first.score)), FIRST, marked=True)
    if not values:
        return None
    where = (
        f"first divergence: {first.name} [{first.class_name}], score {first.score:.3g}"
        if first
        else "nothing diverges beyond tolerance"
    )
    return Overlay(
        kind="divergence",
        title="error / tolerance",
        graph=graph,
        values=tuple(values.values()),
        legend=(
            LegendItem(FIRST, "first divergence"),
            LegendItem(FAIL, "error/tolerance > 1 (fails)"),
            LegendItem(NEAR, "0.1 - 1 (within tolerance, close)"),
            LegendItem(PASS, "< 0.1"),
        ),
        summary=where,
    )


def placement_overlay(
    nodes: Collection[tuple[str, str]], target: str, graph: str, keys: Collection[str] | None = None
) -> Overlay | None:
    """The provider each node ran on, ``(node, provider)``; CPU fallbacks (off ``target``) marked."""
    values: dict[str, OverlayValue] = {}
    for name, provider in nodes:
        key = graph_node(name, keys)
        if key is None or key in values:
            continue
        off = provider != target
        color = FALLBACK if off and provider == "CPUExecutionProvider" else OTHER if off else TARGET
        values[key] = OverlayValue(key, provider, color, marked=off)
    if not values:
        return None
    fallbacks = sum(v.marked for v in values.values())
    return Overlay(
        kind="placement",
        title="provider",
        graph=graph,
        values=tuple(values.values()),
        legend=(
            LegendItem(TARGET, f"ran on {target}"),
            LegendItem(FALLBACK, "fell back to the CPU"),
            LegendItem(OTHER, "another provider"),
        ),
        summary=f"{len(values)} node(s), {fallbacks} off {target}",
    )


def placement_from_report(placement: Placement, graph: str, nodes: Collection[str]) -> Overlay | None:
    """A validation's placement: its fallback nodes as they ran, every other node of the graph on the target."""
    off = {n.name: n.provider for n in placement.fallback}
    return placement_overlay([(k, off.get(k, placement.target)) for k in nodes], placement.target, graph)


def graph_node(name: str, keys: Collection[str] | None) -> str | None:
    """The graph node an ONNX Runtime node stands for: itself, or the node a fusion kept the name of
    (``fused mm2/MatMulAddFusion`` -> ``mm2``); None when ONNX Runtime made it from several."""
    if _known(keys, name):
        return name
    if name.startswith("fused ") and "/" in name:
        inner = name[len("fused ") :].rsplit("/", 1)[0]
        return inner if _known(keys, inner) else None
    return None


def time_overlay(profile: NodeProfile, graph: str, keys: Collection[str] | None = None, top: int = 5) -> Overlay | None:
    """Mean milliseconds per run of each node (a fused node's time on the node it kept the name of);
    the ``top`` most expensive marked."""
    hot = {n.name for n in profile.top(top)}
    peak = max((n.ms for n in profile.nodes), default=0.0)
    values: dict[str, OverlayValue] = {}
    for n in profile.nodes:
        key = graph_node(n.name, keys)
        if key is None or key in values:
            continue
        color = HOT if n.name in hot else WARM if peak and n.ms > 0.1 * peak else COOL
        values[key] = OverlayValue(key, round(n.ms, 6), color, marked=n.name in hot)
    if not values:
        return None
    missing = len(profile.nodes) - len(values)
    return Overlay(
        kind="time",
        title="ms per run",
        graph=graph,
        values=tuple(values.values()),
        legend=(
            LegendItem(HOT, f"top {top} by time"),
            LegendItem(WARM, "> 10% of the slowest node"),
            LegendItem(COOL, "the rest"),
        ),
        summary=(
            f"nodes {profile.nodes_ms:.3g} ms of {profile.total_ms:.3g} ms per run on {profile.provider}"
            + (f"; {missing} node(s) ONNX Runtime made (fused) are not in the graph" if missing else "")
        ),
    )
