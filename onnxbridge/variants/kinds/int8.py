"""int8: dynamic quantisation (int8 weights, uint8 activations per run) of MatMul, Gather and Attention."""

from __future__ import annotations

from pathlib import Path

from ...options import Budget
from ..build import BuildContext, Built
from ..kind import VariantKind


def build(model, src: Path, dst: Path, ctx: BuildContext) -> Built:
    from ..quantize import int8_dynamic

    settings = int8_dynamic(model, dst)
    return Built(dst, "onnxruntime quantize_dynamic (int8 weights, uint8 activations per run)", {"settings": settings})


KIND = VariantKind(
    "int8",
    build,
    Budget((("cosine", 0.99), ("top1_decisive", 0.98), ("nonfinite", 0))),
    "dynamic int8 quantisation (transformers)",
    must_quantise="MatMul / Gather / Attention",
    empty_hint="int8 dynamic quantises MatMul, Gather and Attention only (Conv is slower as "
    "ConvInteger): use int8-static for CNNs",
)
