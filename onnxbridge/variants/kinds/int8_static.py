"""int8-static: QDQ quantisation calibrated on real or generated inputs, per-channel int8 weights."""

from __future__ import annotations

from pathlib import Path

from ...options import Budget
from ..build import BuildContext, Built
from ..kind import VariantKind


def build(model, src: Path, dst: Path, ctx: BuildContext) -> Built:
    from ..quantize import int8_static

    settings = int8_static(model, dst, ctx.calibration, method=ctx.method)
    return Built(
        dst,
        f"onnxruntime quantize_static, QDQ, {ctx.method} calibration on "
        f"{len(ctx.calibration)} case(s), per-channel int8 weights",
        {"settings": settings},
    )


KIND = VariantKind(
    "int8-static",
    build,
    Budget((("cosine", 0.98), ("top1_decisive", 0.97), ("nonfinite", 0))),
    "calibrated static int8 quantisation (CNNs)",
    must_quantise="any op",
    empty_hint="the model has no op quantize_static handles",
)
