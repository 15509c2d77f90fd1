"""One builder per variant kind: fp32 ONNX model in, variant file out, and what was done.

A builder that cannot produce its variant raises :class:`VariantUnavailable` with a reason and a hint;
the stage then writes nothing for it and the fp32 model is never touched (builders read it, and write
into a private folder).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._util import Progress, first_line, no_progress
from ..options import Budget
from ..results import KeptNode

__all__ = ["VariantUnavailable", "BuildContext", "Built", "build_variant", "variant_filename"]


class VariantUnavailable(Exception):
    """The variant cannot be produced or loaded here: ``reason`` says why, ``hint`` what to do."""

    def __init__(self, reason: str, hint: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.hint = reason, hint


@dataclass(frozen=True)
class BuildContext:
    """What a builder may need: the provider the variant will run on, calibration / search cases, the
    budget (the fp16 search is judged by it) and the calibration method."""

    provider: str
    calibration: Sequence[Mapping[str, np.ndarray]]
    budget: Budget
    margin: float
    method: str = "minmax"
    threads: int | None = None
    progress: Progress = no_progress


@dataclass(frozen=True)
class Built:
    """A variant file, one line on how it was made, the builder's facts, and the nodes kept in fp32."""

    path: Path
    method: str
    details: dict[str, Any] = field(default_factory=dict)
    kept: tuple[KeptNode, ...] = ()
    seconds: float = 0.0


def variant_filename(model_path: Path, kind: str) -> str:
    """``model.int8.onnx``, ``model.fp16.onnx``, ... and ``model.ort`` for the ORT format."""
    return f"{model_path.stem}.ort" if kind == "ort" else f"{model_path.stem}.{kind}.onnx"


def _save(model, path: Path) -> None:
    from ..onnxio import save_onnx

    save_onnx(model, path)


def _fp16(model, src: Path, dst: Path, ctx: BuildContext) -> Built:
    from .mixed import NoFp16Model, mixed_precision

    try:
        m16, res = mixed_precision(model, ctx.calibration, ctx.budget, margin=ctx.margin, provider=ctx.provider,
                                   threads=ctx.threads, progress=ctx.progress)
    except NoFp16Model as e:
        raise VariantUnavailable(f"fp16: {e}", "the model overflows or loses too much in fp16 everywhere; "
                                 "try int8, or loosen --budget") from e
    _save(m16, dst)
    kept = tuple(k for k in res.kept if k.kind != "default-op")
    by_kind: dict[str, int] = {}
    for k in res.kept:
        by_kind[k.kind] = by_kind.get(k.kind, 0) + 1
    how = "measured on an fp32 graph that rounds like fp16" if res.mode == "emulate" else f"run on {ctx.provider}"
    return Built(dst, f"onnxruntime float16 converter, float I/O kept; fp32 nodes found by overflow check and "
                      f"bisection ({how})",
                 {"float_nodes": res.float_nodes, "kept_fp32_by_kind": by_kind, "search_attempts": res.attempts,
                  "overflow_rounds": res.overflow_rounds, "search_mode": res.mode, "search_s": res.seconds}, kept)


def _bf16(model, src: Path, dst: Path, ctx: BuildContext) -> Built:
    from .precision import bf16_support, convert_bf16

    mb = convert_bf16(model)
    missing = bf16_support(mb, ctx.provider)
    if missing:
        raise VariantUnavailable(f"bf16 on {ctx.provider}: ONNX Runtime has no bf16 kernel for {missing}",
                                 "bf16 runs on CUDA: use --provider cuda" if ctx.provider == "cpu"
                                 else "keep that op in fp32, or use fp16")
    _save(mb, dst)
    return Built(dst, "onnxruntime float16 converter, retyped to bfloat16 (weights re-rounded from fp32), "
                      "float I/O kept")


def _int8(model, src: Path, dst: Path, ctx: BuildContext) -> Built:
    from .quantize import int8_dynamic

    settings = int8_dynamic(model, dst)
    return Built(dst, "onnxruntime quantize_dynamic (int8 weights, uint8 activations per run)", {"settings": settings})


def _int8_static(model, src: Path, dst: Path, ctx: BuildContext) -> Built:
    from .quantize import int8_static

    settings = int8_static(model, dst, ctx.calibration, method=ctx.method)
    return Built(dst, f"onnxruntime quantize_static, QDQ, {ctx.method} calibration on "
                      f"{len(ctx.calibration)} case(s), per-channel int8 weights", {"settings": settings})


def _int4(model, src: Path, dst: Path, ctx: BuildContext) -> Built:
    from .quantize import int4_weight_only, weights_as_matmul

    rewritten, rewrites = weights_as_matmul(model)
    q, settings = int4_weight_only(rewritten)
    _save(q, dst)
    return Built(dst, "onnxruntime MatMulNBitsQuantizer: 4-bit blocks of 32, MatMul and embedding Gather",
                 {"settings": settings, "rewrites": rewrites})


def _ort(model, src: Path, dst: Path, ctx: BuildContext) -> Built:
    from .ortformat import mobile_usability, to_ort

    settings = to_ort(src, dst)
    return Built(dst, "ORT format for ONNX Runtime Mobile (arm, optimisation level all)",
                 {"settings": settings, "mobile": mobile_usability(src)})


_BUILDERS: dict[str, Callable[[Any, Path, Path, BuildContext], Built]] = {
    "fp16": _fp16, "bf16": _bf16, "int8": _int8, "int8-static": _int8_static, "int4": _int4, "ort": _ort,
}
# What the quantising builders must have changed; none of these in the result: nothing was quantised.
_MUST_QUANTISE = {"int8": "MatMul / Gather / Attention", "int8-static": "any op", "int4": "MatMul or Gather"}
_HINTS = {"int8": "int8 dynamic quantises MatMul, Gather and Attention only (Conv is slower as ConvInteger): "
                  "use int8-static for CNNs",
          "int8-static": "the model has no op quantize_static handles",
          "int4": "int4 needs MatMul (or Gemm / Gather) with a constant 2-D weight"}


def build_variant(kind: str, model, src: Path, dst: Path, ctx: BuildContext) -> Built:
    """Build ``kind`` from ``model`` (read from ``src``) into ``dst``; any tool failure is
    :class:`VariantUnavailable`."""
    t0 = time.perf_counter()
    try:
        built = _BUILDERS[kind](model, src, dst, ctx)
    except VariantUnavailable:
        raise
    except Exception as e:  # each tool fails its own way: a failure is a reason, not a traceback
        raise VariantUnavailable(f"{kind}: {first_line(e)}", "rerun with --debug for the tool's traceback") from e
    if kind in _MUST_QUANTISE:
        import onnx

        from .quantize import quantized_ops

        ops = quantized_ops(onnx.load(str(dst), load_external_data=False))
        if not ops:
            raise VariantUnavailable(f"{kind}: nothing was quantised (no {_MUST_QUANTISE[kind]} the tool handles)",
                                     _HINTS[kind])
        built.details["quantized_ops"] = ops
    return Built(built.path, built.method, built.details, built.kept, time.perf_counter() - t0)
