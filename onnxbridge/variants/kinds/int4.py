"""int4: 4-bit weight-only blocks (MatMulNBits) for MatMul and embedding Gather."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...options import Budget
from ..build import BuildContext, Built, save
from ..kind import FolderForm, VariantKind

if TYPE_CHECKING:
    from ...options import VariantOptions


def build(model, src: Path, dst: Path, ctx: BuildContext) -> Built:
    from ..quantize import int4_weight_only, weights_as_matmul

    rewritten, rewrites = weights_as_matmul(model)
    q, settings = int4_weight_only(rewritten)
    save(q, dst)
    return Built(
        dst,
        "onnxruntime MatMulNBitsQuantizer: 4-bit blocks of 32, MatMul and embedding Gather",
        {"settings": settings, "rewrites": rewrites},
    )


def build_folder(src: Path, dst: Path) -> Built:
    """The with-past folder's copy: its decoder's MatMul weights in 4-bit blocks (the embedding Gather kept
    fp32: decode reads one row of it a step), every other file copied."""
    from ...generation.quantize import BLOCK_SIZE, quantize_folder

    q = quantize_folder(src, dst, "int4")
    return Built(
        dst,
        f"onnxruntime MatMulNBitsQuantizer: 4-bit blocks of {BLOCK_SIZE} along K, asymmetric, accuracy level 4, "
        "MatMul weights (embedding Gather kept fp32)",
        {"settings": q.settings, "quantized_ops": q.quantized_ops},
    )


def notes(options: VariantOptions) -> tuple[str, ...]:
    if "top1" in dict(options.budget) or "top1_decisive" in dict(options.budget):
        return ()
    return (
        (
            "int4: argmax agreement is reported, not gated by default (random-weight LMs have near-flat "
            "logits that 4-bit weights reorder); gate it with --budget top1_decisive=..."
        ),
    )


# int4 does not gate argmax agreement: on random-weight LMs (near-flat logits) 4-bit weights flip most
# argmaxes (measured 0.2-0.4 on GPT-2 / Llama-style configs) while staying useful.
KIND = VariantKind(
    "int4",
    build,
    Budget((("cosine", 0.9), ("nonfinite", 0))),
    "4-bit weight-only blocks (LLMs)",
    must_quantise="MatMul or Gather",
    empty_hint="int4 needs MatMul (or Gemm / Gather) with a constant 2-D weight",
    notes=notes,
    # a trained LM's greedy tokens: 4-bit blocks of 128 (the folder form's, ONNX Runtime's default) keep >= 0.9
    # of them (0.988 measured on the test's char LM over 8 x 64 tokens; 0.994 with blocks of 32), the
    # perplexity within 10 % (1.013), no logit moved by half the logits' range (0.27 measured)
    folder=FolderForm(
        build_folder,
        Budget((("token_agreement", 0.9), ("logit_drift", 0.5), ("perplexity_ratio", 1.1))),
    ),
)
