"""``debug FOLDER OUT_DIR``: where a with-past decoder's KV cache (or logits) first leaves the source's,
step by step through a greedy replay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["CacheCheck", "CacheDivergence", "CacheTensor"]

CacheTensor = Literal["key", "value", "logits"]


@dataclass(frozen=True)
class CacheCheck:
    """One output of the graph at one step, against the source with its own cache: ``present.{layer}.key``
    / ``.value`` or ``logits``. ``max_abs`` is over the unmasked positions; ``tolerance`` is the logits /
    cache atol scaled by ``max(1, max |source|)``. Where the largest difference sits: batch ``row``,
    ``head`` (None for logits), ``position`` along the sequence axis (left padding included) and
    ``token`` (the same position counted from the row's first real token)."""

    step: int
    name: str
    layer: int | None
    tensor: CacheTensor
    max_abs: float
    tolerance: float
    row: int
    head: int | None
    position: int
    token: int

    @property
    def passed(self) -> bool:
        return self.max_abs <= self.tolerance

    def to_dict(self) -> dict[str, object]:
        from .serialize import fields_plain

        return {**fields_plain(self), "passed": self.passed}

    def describe(self) -> str:
        where = f"prompt {self.row}" + (f", head {self.head}" if self.head is not None else "")
        return (
            f"step {self.step}: {self.name} max_abs {self.max_abs:.3g} (tolerance {self.tolerance:.3g}) "
            f"at {where}, position {self.position} (token {self.token} of the row)"
        )


@dataclass(frozen=True)
class CacheDivergence:
    """The replay: ``prompts`` left-padded in one batch (``pad``), greedy on the source's tokens for up
    to ``new_tokens`` steps (step 0 is the prefill), each step's every present and the logits compared.
    ``first`` is the first (step, layer, key | value) or logits beyond tolerance, None when nothing
    diverges; ``steps`` the worst output of each step replayed (up to ``first``'s step); ``at_first``
    every output at ``first``'s step (at the last step when nothing diverges)."""

    folder: str
    prompts: tuple[tuple[int, ...], ...]
    new_tokens: int
    atol: float
    provider: str
    steps: tuple[CacheCheck, ...]
    at_first: tuple[CacheCheck, ...]
    first: CacheCheck | None = None
    tokens: tuple[tuple[int, ...], ...] = ()  # the source's greedy tokens the replay fed both sides
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.first is None

    def summary(self) -> str:
        if self.first is None:
            worst = max((c.max_abs for c in self.steps), default=0.0)
            return (
                f"nothing diverges: every present key / value and the logits stay within tolerance over "
                f"{len(self.steps)} steps of {len(self.prompts)} prompt(s) (worst max_abs {worst:.3g})"
            )
        f = self.first
        what = f"layer {f.layer} {f.tensor}" if f.layer is not None else "the logits (every cache layer agrees)"
        return f"first divergence: {what}, {f.describe()}"
