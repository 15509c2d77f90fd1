"""ort: the ORT format for ONNX Runtime Mobile, with which mobile execution providers would take it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...options import Budget
from ...results.table import Table
from ..build import BuildContext, Built
from ..kind import VariantKind

if TYPE_CHECKING:
    from ...options import VariantOptions
    from ...results import VariantResult


def build(model, src: Path, dst: Path, ctx: BuildContext) -> Built:
    from ..ortformat import mobile_usability, to_ort

    settings = to_ort(src, dst)
    return Built(
        dst,
        "ORT format for ONNX Runtime Mobile (arm, optimisation level all)",
        {"settings": settings, "mobile": mobile_usability(src)},
    )


def notes(options: VariantOptions) -> tuple[str, ...]:
    if KIND.speed_rule(options) is not None:
        return ()
    return (
        ("ort: timed here but not gated on speed (the file is for a phone: this host's timing says nothing of it)"),
    )


def table(result: VariantResult) -> Table | None:
    """Which mobile execution providers would take the model, and the recommendation as the last row."""
    mobile = result.details.get("mobile")
    if not mobile:
        return None
    rows = tuple(
        (
            e["ep"],
            str(e["suitability"]),
            f"{e['supported_nodes']}/{e['nodes']}",
            str(e["partitions"]),
            str(e["with_fixed_shapes"] or "-"),
        )
        for e in mobile["eps"]
    )
    rows += (("recommendation", str(mobile["recommendation"]), "", "", ""),)
    return Table(("mobile EP", "suitable", "supported nodes", "partitions", "with fixed shapes"), rows)


# Near-exact; min_speedup None: an .ort file is for another device, this host's timing says nothing of it.
KIND = VariantKind(
    "ort",
    build,
    Budget((("cosine", 0.99999), ("nonfinite", 0))),
    "ORT format for ONNX Runtime Mobile",
    min_speedup=None,
    suffix=".ort",
    onnx_file=False,
    notes=notes,
    table=table,
)
