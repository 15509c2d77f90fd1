"""int8: dynamic quantisation (int8 weights, uint8 activations per run) of MatMul, Gather and Attention."""

from __future__ import annotations

from pathlib import Path

from ...options import Budget
from ..build import BuildContext, Built
from ..kind import FolderForm, VariantKind


def build(model, src: Path, dst: Path, ctx: BuildContext) -> Built:
    from ..quantize import int8_dynamic

    settings = int8_dynamic(model, dst)
    return Built(dst, "onnxruntime quantize_dynamic (int8 weights, uint8 activations per run)", {"settings": settings})


def build_folder(src: Path, dst: Path) -> Built:
    """The with-past folder's copy: its decoder quantised dynamically to int8, every other file copied."""
    from ...generation.quantize import quantize_folder

    q = quantize_folder(src, dst, "int8")
    return Built(
        dst,
        "onnxruntime quantize_dynamic (int8 weights, uint8 activations per run) of the decoder",
        {"settings": q.settings, "quantized_ops": q.quantized_ops},
    )


KIND = VariantKind(
    "int8",
    build,
    Budget((("cosine", 0.99), ("top1_decisive", 0.98), ("nonfinite", 0))),
    "dynamic int8 quantisation (transformers)",
    must_quantise="MatMul / Gather / Attention",
    empty_hint="int8 dynamic quantises MatMul, Gather and Attention only (Conv is slower as "
    "ConvInteger): use int8-static for CNNs",
    folder=FolderForm(
        build_folder,
        Budget((("token_agreement", 0.95), ("logit_drift", 0.25), ("perplexity_ratio", 1.05))),
    ),
)
