"""What the encoder-decoder exports share: optimum's file names, the flat cache order, one graph's spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DECODER", "DECODER_WITH_PAST", "ENCODER", "GraphSpec", "flat_cache", "kv_names"]

ENCODER, DECODER, DECODER_WITH_PAST = "encoder_model.onnx", "decoder_model.onnx", "decoder_with_past_model.onnx"


def kv_names(prefix: str, layers: int, sides: tuple[str, ...] = ("decoder", "encoder")) -> list[str]:
    """``prefix.{i}.{side}.key/.value`` for every layer, sides in order."""
    return [f"{prefix}.{i}.{side}.{k}" for i in range(layers) for side in sides for k in ("key", "value")]


def flat_cache(cache: Any, layers: int, sides: tuple[str, ...]) -> list:
    """An EncoderDecoderCache as flat tensors: per layer, per side (decoder, encoder), key then value."""
    out = []
    for i in range(layers):
        for side in sides:
            part = cache.self_attention_cache if side == "decoder" else cache.cross_attention_cache
            out += [part.layers[i].keys, part.layers[i].values]
    return out


@dataclass(frozen=True)
class GraphSpec:
    """One graph to export: its file, module, names, dynamic axes, a feed maker and what to compare."""

    file: str
    module: Any
    inputs: list[str]
    outputs: list[str]
    axes: dict[str, dict[int, str]]
    feeds: Any  # (batch, enc_seq, dec_seq, past, seed) -> feeds in input order, as numpy
    keep: Any = None  # feeds -> [batch, encoder positions] of positions to compare (None: all)
