"""Typed results of ``onnxbridge bench OUT_DIR``: prefill latency and decode tokens/s of a with-past
folder on ONNX Runtime (plain feeds and IO binding of the cache) and of the source with its cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["DecodeBench", "DecodeTiming"]

ORT = "onnxruntime"
TORCH = "transformers"
GENAI = "onnxruntime-genai"  # its own Generator, on a folder the GenAI model builder wrote


@dataclass(frozen=True)
class DecodeTiming:
    """One runtime / mode at one batch: the median over ``trials`` interleaved trials.

    ``prefill_ms``: one forward pass over the prompt (batch x prompt_length tokens), cache written.
    ``decode_tokens_per_s``: new tokens per second over the batch (batch x steps / seconds) in the
    one-token-a-step loop after the prefill. ``peak_rss_bytes``: the process's peak resident memory during
    this side's trials; ``peak_added_bytes``: that peak less the memory resident when its trial began
    (cache, activations, arena), the part one runtime adds on top of the loaded weights."""

    runtime: str
    mode: str  # "feeds" | "io-binding" (ORT), "dynamic-cache" (transformers), "generator" (onnxruntime-genai)
    batch: int
    prefill_ms: float
    decode_tokens_per_s: float
    peak_rss_bytes: int
    peak_added_bytes: int
    trials: int
    prefill_ms_all: tuple[float, ...] = ()
    decode_tokens_per_s_all: tuple[float, ...] = ()
    variant: str = "fp32"  # ONNX Runtime rows: which folder (fp32, or a quantised copy: int4, int8)


@dataclass(frozen=True)
class DecodeBench:
    """The whole decode bench: settings, one :class:`DecodeTiming` per runtime, mode and batch, and the
    ratios of the faster ONNX Runtime mode over the source (higher is better for ONNX Runtime)."""

    folder: str
    source: str | None
    provider: str
    prompt_length: int
    new_tokens: int
    batches: tuple[int, ...]
    threads: int | None
    rows: tuple[DecodeTiming, ...]
    notes: tuple[str, ...] = ()
    same_tokens: tuple[bool, ...] = ()  # per batch: every runtime and mode chose the same greedy tokens

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.variant for r in self.rows if r.runtime == ORT))

    def best_ort(self, batch: int, variant: str = "fp32") -> DecodeTiming | None:
        """The faster ONNX Runtime mode at ``batch`` (by decode tokens/s) of ``variant``."""
        rows = [r for r in self.rows if r.runtime == ORT and r.batch == batch and r.variant == variant]
        return max(rows, key=lambda r: r.decode_tokens_per_s) if rows else None

    def source_row(self, batch: int) -> DecodeTiming | None:
        return next((r for r in self.rows if r.runtime == TORCH and r.batch == batch), None)

    def decode_speedup(self, batch: int, variant: str = "fp32") -> float | None:
        """ORT decode tokens/s over the source's, at ``batch`` (None without a source)."""
        o, s = self.best_ort(batch, variant), self.source_row(batch)
        return (
            None
            if o is None or s is None or s.decode_tokens_per_s <= 0
            else o.decode_tokens_per_s / s.decode_tokens_per_s
        )

    def prefill_speedup(self, batch: int, variant: str = "fp32") -> float | None:
        """The source's prefill latency over ORT's (the faster mode's), at ``batch``."""
        o, s = self.best_ort(batch, variant), self.source_row(batch)
        return None if o is None or s is None or o.prefill_ms <= 0 else s.prefill_ms / o.prefill_ms

    def to_dict(self) -> dict[str, Any]:
        from .serialize import to_plain

        ratios = [
            {
                "batch": b,
                "variant": v,
                "ort_mode": (best.mode if (best := self.best_ort(b, v)) else None),
                "decode_speedup": self.decode_speedup(b, v),
                "prefill_speedup": self.prefill_speedup(b, v),
            }
            for v in self.variants
            for b in self.batches
        ]
        return {**to_plain(self, own=False), "ratios": ratios}
