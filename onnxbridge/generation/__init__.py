"""Generation-ready export of decoders with their KV cache (optimum's layout and names), the ONNX
Runtime KV-cache loop that runs it, and generation parity against the source's own ``generate()``."""

from __future__ import annotations

from .layout import CacheLayout, KvShape
from .loop import DecoderSession, GenerationRun, Sampling

__all__ = ["CacheLayout", "DecoderSession", "GenerationRun", "KvShape", "Sampling"]
