"""Quantised with-past decoders (int4 MatMulNBits, int8 dynamic) judged on generation against the fp32 files:
the fp32 folder greedy-decodes the prompts; the quantised copy is run over the same tokens (teacher-forced, so
every step is judged on the same prefix) and each step's argmax and logits are compared. The verdict: the
share of steps whose argmax agrees (token agreement), the logit drift per step (max_abs), and the first step
where a free greedy run of the copy leaves the fp32 run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .loop import DecoderSession, GenerationRun, left_pad
from .quantize import BLOCK_SIZE, QuantizedFolder, quantize_folder

__all__ = ["GenerationAgreement", "QuantizedDecoder", "agreement_with", "generation_agreement", "quantize_with_past"]


@dataclass(frozen=True)
class GenerationAgreement:
    """Per prompt and step: whether the copy's argmax is fp32's token, and the logits' max_abs difference."""

    new_tokens: int
    agree: tuple[tuple[bool, ...], ...]
    drift: tuple[tuple[float, ...], ...]
    first_divergence: tuple[int | None, ...]  # per prompt, the first step a free greedy run differs (None: never)
    relative: tuple[tuple[float, ...], ...] = ()  # drift over the range (max - min) of fp32's logits there

    @property
    def max_relative_drift(self) -> float:
        return max((d for row in self.relative for d in row), default=0.0)

    def drift_per_step(self) -> tuple[float, ...]:
        """Per step, the largest relative drift over the prompts."""
        return tuple(max(col) for col in zip(*self.relative)) if self.relative else ()

    @property
    def token_agreement(self) -> float:
        steps = [a for row in self.agree for a in row]
        return sum(steps) / len(steps) if steps else 1.0

    @property
    def max_drift(self) -> float:
        return max((d for row in self.drift for d in row), default=0.0)

    def summary(self) -> str:
        first = [f for f in self.first_divergence if f is not None]
        where = f"free run leaves fp32 at step {min(first)}" if first else "free run identical"
        return (
            f"token agreement {self.token_agreement:.3f} over {self.new_tokens} tokens x {len(self.agree)} prompts, "
            f"logit drift max {self.max_drift:.3g}; {where}"
        )


@dataclass(frozen=True)
class QuantizedDecoder:
    """One quantised copy, its agreement with the fp32 files and the verdict against ``min_agreement``."""

    quantized: QuantizedFolder
    agreement: GenerationAgreement
    min_agreement: float

    @property
    def passed(self) -> bool:
        return self.agreement.token_agreement >= self.min_agreement


def _prefix_logits(session: DecoderSession, prompts: Sequence[Sequence[int]], forced: Any, pad: int) -> list[Any]:
    """The last-position logits of each step when ``forced`` ([batch, steps]) is fed token by token."""
    import numpy as np

    ids, mask = left_pad(prompts, pad)
    layout, batch = session.layout, ids.shape[0]
    past = layout.empty_past(batch)
    positions = np.where(mask == 0, 0, np.cumsum(mask, axis=1) - 1).astype(np.int64)
    current, seen = ids, []
    for step in range(forced.shape[1]):
        feeds = {"input_ids": current, "attention_mask": mask, **past}
        if layout.position_ids:
            feeds["position_ids"] = positions
        logits, present = session.step(feeds)
        seen.append(logits[:, -1, :].astype(np.float32))
        past = dict(zip(layout.past_names, present))
        current = forced[:, step : step + 1].astype(np.int64)
        mask = np.concatenate([mask, np.ones((batch, 1), dtype=np.int64)], axis=1)
        positions = positions[:, -1:] + 1
    return seen


def generation_agreement(
    fp32: str | Path,
    quantized: str | Path,
    prompts: Sequence[Sequence[int]],
    new_tokens: int = 64,
    *,
    pad: int = 0,
    provider: str = "cpu",
) -> GenerationAgreement:
    """Greedy-decode ``prompts`` through ``fp32`` and judge ``quantized`` step by step on the same tokens."""
    ref_s, q_s = DecoderSession(fp32, provider), DecoderSession(quantized, provider)
    ref = ref_s.generate(prompts, new_tokens, pad=pad, keep_logits=True)
    return agreement_with(ref, q_s, pad=pad)


def agreement_with(ref: GenerationRun, copy: DecoderSession, *, pad: int = 0) -> GenerationAgreement:
    """``copy`` judged against fp32's greedy run ``ref`` (made with ``keep_logits``): teacher-forced on
    fp32's tokens, then a free greedy run for the first divergence."""
    import numpy as np

    prompts = ref.prompts
    forced = np.array(ref.tokens, dtype=np.int64)
    q_logits = _prefix_logits(copy, prompts, forced, pad)
    agree = np.stack([lq.argmax(-1) == forced[:, i] for i, lq in enumerate(q_logits)], axis=1)
    drift = np.stack([np.abs(lq - lr).max(-1) for lq, lr in zip(q_logits, ref.logits)], axis=1)
    spread = np.stack([lr.max(-1) - lr.min(-1) for lr in ref.logits], axis=1)
    relative = drift / np.maximum(spread, 1e-12)
    free = np.array(copy.generate(prompts, forced.shape[1], pad=pad).tokens)
    first = tuple(int(np.argmax(row != want)) if (row != want).any() else None for row, want in zip(free, forced))
    return GenerationAgreement(
        forced.shape[1],
        tuple(tuple(bool(a) for a in row) for row in agree),
        tuple(tuple(float(d) for d in row) for row in drift),
        first,
        tuple(tuple(float(d) for d in row) for row in relative),
    )


def quantize_with_past(
    folder: str | Path,
    out_root: str | Path,
    kinds: Sequence[str],
    prompts: Sequence[Sequence[int]],
    *,
    new_tokens: int = 64,
    block_size: int = BLOCK_SIZE,
    min_agreement: float = 0.9,
    pad: int = 0,
) -> tuple[QuantizedDecoder, ...]:
    """Each of ``kinds`` (int4, int8) as a folder ``out_root/KIND``, judged on generation against ``folder``."""
    out = []
    for kind in kinds:
        q = quantize_folder(folder, Path(out_root) / kind, kind, block_size=block_size)
        out.append(
            QuantizedDecoder(q, generation_agreement(folder, q.folder, prompts, new_tokens, pad=pad), min_agreement)
        )
    return tuple(out)
