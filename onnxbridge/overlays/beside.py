"""Overlay files written beside a report, and the index that ``onnxbridge view`` reads back.

A report ``where.json`` gets ``where.overlay-divergence.json`` (and ``-placement``, ``-time``): node
data for Model Explorer, plus ``where.overlays.json``: the model they belong to and each file's kind,
title, summary and legend.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError
from ..fsutil import atomic_write_text
from .kinds import (
    divergence_overlay,
    placement_from_report,
    placement_overlay,
    time_overlay,
)
from .nodedata import LegendItem, Overlay, graph_id

if TYPE_CHECKING:
    from ..results import Report

__all__ = ["OverlayFile", "OverlayIndex", "index_path", "overlays_for", "read_index", "write_beside"]

INDEX_VERSION = 1


@dataclass(frozen=True)
class OverlayFile:
    """One node-data file beside a report."""

    kind: str
    path: Path
    title: str
    summary: str
    legend: tuple[LegendItem, ...]
    marked: tuple[str, ...] = ()  # the first divergence's nodes, the fallbacks, the top nodes by time


@dataclass(frozen=True)
class OverlayIndex:
    """The overlays of one report and the ONNX model they are keyed to (``overlays``: the values, when
    just written; an index read back from disk has the files only)."""

    model: Path
    files: tuple[OverlayFile, ...]
    overlays: tuple[Overlay, ...] = ()


def index_path(report_path: str | Path) -> Path:
    p = Path(report_path)
    return p.with_name(p.stem + ".overlays.json")


def _model_of(report: Report) -> Path | None:
    out = report.output
    if out and Path(out).suffix.lower() == ".onnx" and Path(out).is_file():
        return Path(out)
    return None


def _names(path: Path):
    """(graph id, node names, node or output value name -> node name) of the ONNX model at ``path``
    (weights not loaded). A node without a name is keyed by its first output, as the viewer maps it."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    node_of: dict[str, str] = {}
    nodes = []
    for n in model.graph.node:
        key = n.name or (n.output[0] if n.output else "")
        if not key:
            continue
        nodes.append(key)
        node_of.update({o: key for o in n.output if o})
        node_of[key] = key
    return graph_id(model), nodes, node_of


def _module_calls(path: Path) -> dict[str, tuple[str, ...]]:
    """Node name -> the module calls it came from, innermost first, from the exporter's metadata."""
    import onnx

    from ..localize.origins import origins

    model = onnx.load(str(path), load_external_data=False)
    return {name: tuple(str(ref) for ref in reversed(o.stack)) for name, o in origins(model).items()}


def overlays_for(report: Report, model: Path | None = None) -> tuple[Overlay, ...]:
    """Every overlay ``report`` has data for, keyed to ``model`` (default: the report's output model)."""
    model = model or _model_of(report)
    if model is None:
        return ()
    graph, nodes, node_of = _names(model)
    found: list[Overlay | None] = []
    if report.localization is not None:
        modules = _module_calls(model) if report.localization.direction != "onnx" else None
        found.append(divergence_overlay(report.localization, graph, node_of, modules))
    bench = report.bench
    if bench is not None and bench.profile is not None:
        found.append(time_overlay(bench.profile, graph, set(nodes)))
        found.append(
            placement_overlay(
                [(n.name, n.provider) for n in bench.profile.nodes], bench.head.provider_used, graph, set(nodes)
            )
        )
    elif report.validation is not None and report.validation.placement is not None:
        found.append(placement_from_report(report.validation.placement, graph, nodes))
    return tuple(o for o in found if o is not None)


def write_beside(report: Report, report_path: str | Path) -> OverlayIndex | None:
    """Write the overlay files of ``report`` beside ``report_path`` and their index; None when it has none."""
    model = _model_of(report)
    overlays = overlays_for(report, model) if model is not None else ()
    if model is None or not overlays:
        return None
    base = Path(report_path)
    files = []
    for o in overlays:
        path = o.write(base.with_name(f"{base.stem}.overlay-{o.kind}.json"))
        files.append(
            OverlayFile(o.kind, path, o.title, o.summary, o.legend, tuple(v.key for v in o.values if v.marked))
        )
    index = OverlayIndex(model.resolve(), tuple(files), overlays)
    atomic_write_text(
        index_path(base),
        json.dumps(
            {
                "onnxbridge_overlays": INDEX_VERSION,
                "model": str(index.model),
                "overlays": [
                    {
                        "kind": f.kind,
                        "file": f.path.name,
                        "title": f.title,
                        "summary": f.summary,
                        "legend": [{"color": item.color, "meaning": item.meaning} for item in f.legend],
                        "marked": list(f.marked),
                    }
                    for f in files
                ],
            },
            indent=1,
        )
        + "\n",
    )
    return index


def first_divergence(index: OverlayIndex) -> str | None:
    """The node the divergence overlay marks first, if any."""
    return next((f.marked[0] for f in index.files if f.kind == "divergence" and f.marked), None)


def read_index(report_path: str | Path) -> OverlayIndex:
    """The overlays written beside ``report_path`` (exit 2 when there are none, or the index is malformed)."""
    path = index_path(report_path)
    if not path.is_file():
        raise UsageError(
            f"{report_path}: no overlays beside it ({path.name} not found)",
            "write the report with onnxbridge debug ... --report R.json, or bench MODEL.onnx --profile --report R.json",
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        files = tuple(
            OverlayFile(
                str(o["kind"]),
                path.with_name(Path(str(o["file"])).name),
                str(o["title"]),
                str(o["summary"]),
                tuple(LegendItem(str(i["color"]), str(i["meaning"])) for i in o["legend"]),
                tuple(str(m) for m in o.get("marked", ())),
            )
            for o in raw["overlays"]
        )
        index = OverlayIndex(Path(str(raw["model"])), files)
    except (ValueError, KeyError, TypeError) as e:
        raise UsageError(
            f"{path}: not an onnxbridge overlay index ({type(e).__name__}: {e})", "rewrite the report to write it again"
        ) from e
    missing = [str(f.path) for f in index.files if not f.path.is_file()]
    if missing:
        raise UsageError(f"{path}: overlay file(s) missing: {', '.join(missing)}", "rewrite the report")
    return index


def write_with_overlays(report: Report, report_path: str | Path) -> Path:
    """Write ``report`` (format from the suffix) with its overlay files beside it, the page linking them."""
    from ..report import write_report

    return write_report(report, Path(report_path), overlays=write_beside(report, report_path))
