"""Per-node overlays in Model Explorer's node-data format (one JSON file per overlay kind).

The viewer reads ``{graph_id: {"name", "results": {key: {"value", "bgColor"}}, "thresholds"}}``
(``model_explorer.node_data_builder.ModelNodeData``); a key is an ONNX node name, or one of a node's
output tensor names (the viewer maps those to the node that makes them). The legend says what the
values and colours mean; it travels beside the file, in the overlay index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..fsutil import atomic_write_text

__all__ = ["LegendItem", "Overlay", "OverlayValue", "graph_id", "node_data_json"]


@dataclass(frozen=True)
class OverlayValue:
    """One node's value: a number (error/tolerance, milliseconds) or a label (a provider)."""

    key: str
    value: float | str
    color: str
    marked: bool = False  # the first divergence, a CPU fallback, one of the top nodes by time


@dataclass(frozen=True)
class LegendItem:
    """What one colour means."""

    color: str
    meaning: str


@dataclass(frozen=True)
class Overlay:
    """One overlay kind (``divergence``, ``placement``, ``time``) for one ONNX graph."""

    kind: str
    title: str
    graph: str
    values: tuple[OverlayValue, ...]
    legend: tuple[LegendItem, ...]
    summary: str = ""

    def value_of(self, key: str) -> OverlayValue | None:
        return next((v for v in self.values if v.key == key), None)

    def write(self, path: str | Path) -> Path:
        """Write the node-data file, atomically."""
        return atomic_write_text(Path(path), node_data_json(self) + "\n")


def node_data_json(overlay: Overlay) -> str:
    """The overlay in the viewer's ``ModelNodeData`` JSON form."""
    results = {v.key: {"value": v.value, "bgColor": v.color} for v in overlay.values}
    return json.dumps({overlay.graph: {"name": overlay.title, "results": results}}, indent=1, allow_nan=False)


def graph_id(model) -> str:
    """The id the ONNX adapter gives the main graph: its name, or ``<main>`` when it has none."""
    return model.graph.name or "<main>"
