"""Per-node overlays for Google's Model Explorer: divergence (``debug``), placement and time
(``bench --profile``), written beside the reports and shown by ``onnxbridge view``."""

from .beside import OverlayFile, OverlayIndex, overlays_for, read_index, write_beside, write_with_overlays
from .kinds import divergence_overlay, placement_overlay, time_overlay
from .nodedata import LegendItem, Overlay, OverlayValue, node_data_json
from .profile import NodeProfile, NodeTime, parse_node_times, profile_session

__all__ = [
    "LegendItem",
    "NodeProfile",
    "NodeTime",
    "Overlay",
    "OverlayFile",
    "OverlayIndex",
    "write_with_overlays",
    "OverlayValue",
    "divergence_overlay",
    "node_data_json",
    "overlays_for",
    "parse_node_times",
    "placement_overlay",
    "profile_session",
    "read_index",
    "time_overlay",
    "write_beside",
]
