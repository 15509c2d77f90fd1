"""fp16: float16 weights and compute, float I/O kept, fp32 islands found by overflow check and bisection."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ...options import Budget
from ..build import BuildContext, Built, VariantUnavailable, save
from ..kind import VariantKind

if TYPE_CHECKING:
    from ...options import VariantOptions


def build(model, src: Path, dst: Path, ctx: BuildContext) -> Built:
    from ..mixed import NoFp16Model, mixed_precision

    try:
        m16, res = mixed_precision(
            model,
            ctx.calibration,
            ctx.budget,
            margin=ctx.margin,
            provider=ctx.provider,
            threads=ctx.threads,
            progress=ctx.progress,
        )
    except NoFp16Model as e:
        raise VariantUnavailable(
            f"fp16: {e}", "the model overflows or loses too much in fp16 everywhere; try int8, or loosen --budget"
        ) from e
    save(m16, dst)
    kept = tuple(k for k in res.kept if k.kind != "default-op")
    by_kind: dict[str, int] = {}
    for k in res.kept:
        by_kind[k.kind] = by_kind.get(k.kind, 0) + 1
    how = "measured on an fp32 graph that rounds like fp16" if res.mode == "emulate" else f"run on {ctx.provider}"
    return Built(
        dst,
        f"onnxruntime float16 converter, float I/O kept; fp32 nodes found by overflow check and bisection ({how})",
        {
            "float_nodes": res.float_nodes,
            "kept_fp32_by_kind": by_kind,
            "search_attempts": res.attempts,
            "overflow_rounds": res.overflow_rounds,
            "search_mode": res.mode,
            "search_s": res.seconds,
        },
        kept,
    )


def notes(options: VariantOptions) -> tuple[str, ...]:
    if options.provider != "cpu":
        return ()
    return (
        (
            "ONNX Runtime's CPU provider runs most fp16 nodes in fp32 behind Casts: fp16 saves size here, "
            "rarely time; the fp32 islands were found on an fp32 graph that rounds like fp16"
        ),
    )


# fp16 should be near-exact.
KIND = VariantKind(
    "fp16",
    build,
    Budget((("cosine", 0.999), ("top1_decisive", 0.99), ("nonfinite", 0))),
    "float16 compute, fp32 islands where fp16 overflows or loses accuracy",
    trt_fp16=True,
    notes=notes,
)
