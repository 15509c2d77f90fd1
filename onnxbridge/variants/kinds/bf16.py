"""bf16: bfloat16 weights and compute (runs where ONNX Runtime has bf16 kernels: CUDA), float I/O kept."""

from __future__ import annotations

from pathlib import Path

from ...options import Budget
from ..build import BuildContext, Built, VariantUnavailable, save
from ..kind import VariantKind


def build(model, src: Path, dst: Path, ctx: BuildContext) -> Built:
    from ..precision import bf16_support, convert_bf16

    mb = convert_bf16(model)
    missing = bf16_support(mb, ctx.provider)
    if missing:
        raise VariantUnavailable(
            f"bf16 on {ctx.provider}: ONNX Runtime has no bf16 kernel for {missing}",
            "bf16 runs on CUDA: use --provider cuda" if ctx.provider == "cpu" else "keep that op in fp32, or use fp16",
        )
    save(mb, dst)
    return Built(
        dst, "onnxruntime float16 converter, retyped to bfloat16 (weights re-rounded from fp32), float I/O kept"
    )


KIND = VariantKind(
    "bf16", build, Budget((("cosine", 0.99), ("top1_decisive", 0.98), ("nonfinite", 0))), "bfloat16 compute (CUDA)"
)
