"""Generation parity: the exported files' greedy KV-cache loop against the source's own ``generate()``,
token by token, per prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["GenerationParity", "RowVerdict", "TokenStep"]

Verdict = Literal["same", "tie", "diverges"]


@dataclass(frozen=True)
class TokenStep:
    """One step of one prompt: the token the ONNX loop chose, the source's, the largest difference of
    their last-position logits, and the source's top-1 minus top-2 logit (how close the choice was)."""

    step: int
    token: int
    source_token: int
    max_abs: float
    top2_gap: float


@dataclass(frozen=True)
class RowVerdict:
    """One prompt's verdict: ``same`` (every token, logits within tolerance), ``tie`` (the first
    difference came where the source's top-2 gap was below the tie tolerance), or ``diverges`` (at
    ``step``: a different token with a clear gap, or logits past the tolerance). Steps are kept up to
    the first difference (after it the two runs see different text)."""

    prompt: tuple[int, ...]
    verdict: Verdict
    steps: tuple[TokenStep, ...]
    step: int | None = None
    reason: str | None = None

    @property
    def passed(self) -> bool:
        return self.verdict != "diverges"

    def describe(self, index: int) -> str:
        head = f"prompt {index} ({len(self.prompt)} tokens)" if self.prompt else f"input {index} (audio features)"
        if self.verdict == "same":
            return f"{head}: {len(self.steps)} tokens identical"
        s = self.steps[self.step] if self.step is not None else None
        what = (
            (
                f"step {self.step}: onnx token {s.token} vs source {s.source_token}, logits max_abs {s.max_abs:.3g}, "
                f"top-2 gap {s.top2_gap:.3g}"
            )
            if s is not None
            else ""
        )
        label = "tie at" if self.verdict == "tie" else "diverges at"
        return f"{head}: {label} {what}" + (f" ({self.reason})" if self.reason else "")


@dataclass(frozen=True)
class GenerationParity:
    """Prompts of different lengths, left-padded in one batch, ``new_tokens`` greedy tokens each."""

    new_tokens: int
    logits_atol: float
    tie_tolerance: float
    provider: str
    rows: tuple[RowVerdict, ...]
    seconds: float = 0.0
    batch_one: tuple[RowVerdict, ...] = ()  # the first prompt alone (batch 1, no padding)
    debug_command: str | None = None  # a failed decoder's: the replay that names the diverging cache layer

    @property
    def passed(self) -> bool:
        return all(r.passed for r in (*self.rows, *self.batch_one))

    @property
    def max_logits_abs(self) -> float:
        return max((s.max_abs for r in (*self.rows, *self.batch_one) for s in r.steps), default=0.0)

    def summary(self) -> str:
        rows = (*self.rows, *self.batch_one)
        same = sum(r.verdict == "same" for r in rows)
        ties = sum(r.verdict == "tie" for r in rows)
        bad = [r.describe(i) for i, r in enumerate(rows) if not r.passed]
        head = (
            f"{same}/{len(rows)} prompts token-identical over {self.new_tokens} new tokens"
            + (f", {ties} near-tie" if ties else "")
            + f"; worst logits max_abs {self.max_logits_abs:.3g}"
        )
        where = (
            f"; to see which layer's cache diverges first: {self.debug_command}" if bad and self.debug_command else ""
        )
        return head + ("; " + "; ".join(bad) if bad else "") + where
