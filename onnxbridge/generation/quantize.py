"""int4 / int8 copies of a with-past decoder folder: ``model.onnx`` quantised (MatMulNBits 4-bit blocks, or
ONNX Runtime's dynamic int8), every other file (config, tokenizer) copied, so the copy loads and generates
like the original."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError

__all__ = ["KINDS", "BLOCK_SIZE", "QuantizedFolder", "quantize_folder"]

KINDS = ("int4", "int8")
BLOCK_SIZE = 128  # int4: weights per 4-bit block along K (one scale and zero point each); ORT's default


@dataclass(frozen=True)
class QuantizedFolder:
    """The folder written, the kind, what the quantiser was told (``settings``) and the ops it wrote."""

    folder: Path
    kind: str
    settings: dict[str, Any]
    quantized_ops: dict[str, int]


def quantize_folder(folder: str | Path, out: str | Path, kind: str, *, block_size: int = BLOCK_SIZE) -> QuantizedFolder:
    """Write ``out``: ``folder``'s with-past decoder quantised to ``kind`` (int4: MatMulNBits, 4-bit blocks
    of ``block_size`` along K, MatMul weights only, accuracy level 4; int8: dynamic, per tensor)."""
    import onnx

    from ..variants.quantize import int4_weight_only, int8_dynamic, quantized_ops

    folder, out = Path(folder), Path(out)
    if kind not in KINDS:
        raise UsageError(f"unknown quantisation {kind!r}", f"use one of {', '.join(KINDS)}")
    src = folder / "model.onnx"
    if not src.is_file():
        raise InputError(f"{folder}: no model.onnx", "give the folder convert --task text-generation-with-past wrote")
    if out.resolve() == folder.resolve():
        raise UsageError(f"{out} is the source folder", "write the quantised copy to another folder")
    out.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        if f.is_file() and not f.name.startswith("model.onnx"):
            shutil.copy2(f, out / f.name)
    model = onnx.load(str(src))
    dst = out / "model.onnx"
    large = model.ByteSize() > 1_800_000_000
    if kind == "int4":
        q, settings = int4_weight_only(model, block_size=block_size, quantize_gather=False)
        onnx.save(q, str(dst), save_as_external_data=large, location="model.onnx.data" if large else None)
    else:
        settings = int8_dynamic(model, dst)
        q = onnx.load(str(dst), load_external_data=False)
    return QuantizedFolder(out, kind, settings, quantized_ops(q))
