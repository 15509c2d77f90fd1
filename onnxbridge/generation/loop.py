"""The ONNX Runtime KV-cache loop over a with-past decoder: left-padded prompts, the attention mask and
position ids as transformers' ``generate()`` builds them, greedy or sampled, one token per row a step
(right-padded prompts where the graph's layout says so: ONNX Runtime GenAI's packed attention).
The validator, ``onnxbridge generate`` and the Python API all run this loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError
from .layout import CacheLayout

__all__ = ["DecoderSession", "GenerationRun", "Sampling", "left_pad", "right_pad"]


@dataclass(frozen=True)
class Sampling:
    """How a token is chosen: greedy (``sample`` False) or sampled with ``temperature`` and ``top_k``
    (0: every token) from a generator seeded with ``seed``."""

    sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise UsageError(f"--temperature {self.temperature} must be > 0", "e.g. --temperature 0.8")
        if self.top_k < 0:
            raise UsageError(f"--top-k {self.top_k} must be >= 0", "0 keeps every token")


@dataclass(frozen=True)
class GenerationRun:
    """What the loop produced: per row the new tokens (a finished row continues with ``pad``, as
    ``generate()`` does), and the last position's logits of every step (``[steps][batch, vocab]``)."""

    prompts: tuple[tuple[int, ...], ...]
    tokens: tuple[tuple[int, ...], ...]
    logits: tuple[Any, ...] = field(repr=False, default=())
    provider: str = "CPUExecutionProvider"
    seconds: float = 0.0


def left_pad(prompts: Sequence[Sequence[int]], pad: int) -> tuple[Any, Any]:
    """(input_ids, attention_mask) of the prompts, left-padded with ``pad`` to the longest."""
    import numpy as np

    if not prompts or any(len(p) == 0 for p in prompts):
        raise UsageError("every prompt needs at least one token", "give --prompt-ids 1,2,3 or a non-empty --prompt")
    width = max(len(p) for p in prompts)
    ids = np.full((len(prompts), width), pad, dtype=np.int64)
    mask = np.zeros((len(prompts), width), dtype=np.int64)
    for row, p in enumerate(prompts):
        ids[row, width - len(p) :] = p
        mask[row, width - len(p) :] = 1
    return ids, mask


def right_pad(prompts: Sequence[Sequence[int]], pad: int) -> tuple[Any, Any]:
    """(input_ids, attention_mask) of the prompts, right-padded with ``pad`` to the longest."""
    ids, mask = left_pad(prompts, pad)  # checks the prompts
    for row, p in enumerate(prompts):
        ids[row, :] = pad
        ids[row, : len(p)] = p
    return ids, mask[:, ::-1].copy()


class DecoderSession:
    """One ONNX Runtime session over ``model.onnx`` of a with-past folder (or a graph path)."""

    def __init__(self, path: str | Path, provider: str = "cpu", *, threads: int | None = None) -> None:
        from ..runtime.providers import create_session

        path = Path(path)
        graph = path / "model.onnx" if path.is_dir() else path
        if not graph.is_file():
            raise InputError(f"{path}: no model.onnx", "give the folder convert --task text-generation-with-past wrote")
        self.path = graph
        options = None
        if threads is not None:
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
        self.session, self.provider = create_session(str(graph), provider, options=options)
        self.layout = CacheLayout.from_graph(self.session, graph)

    def step(self, feeds: dict[str, Any]) -> tuple[Any, list[Any]]:
        """(logits, present) of one call."""
        outs = self.session.run(None, feeds)
        names = [o.name for o in self.session.get_outputs()]
        by_name = dict(zip(names, outs))
        return by_name["logits"], [by_name[n] for n in self.layout.present_names]

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int,
        *,
        pad: int = 0,
        eos: Sequence[int] = (),
        sampling: Sampling = Sampling(),
        keep_logits: bool = False,
        on_step: Callable[[int, tuple[int, ...]], None] | None = None,
    ) -> GenerationRun:
        """Decode up to ``max_new_tokens`` per row; a row that emits an ``eos`` token is finished (it
        continues with ``pad``), and the loop stops when every row is. ``on_step(step, tokens)`` sees
        each step's tokens as they come (for streaming)."""
        import time

        import numpy as np

        if max_new_tokens < 1:
            raise UsageError(f"--max-new-tokens {max_new_tokens} must be >= 1", "e.g. --max-new-tokens 32")
        t0 = time.perf_counter()
        layout = self.layout
        ids, mask = (right_pad if layout.padding == "right" else left_pad)(prompts, pad)
        batch = ids.shape[0]
        rows = np.arange(batch)
        last_at = mask.sum(axis=1) - 1 if layout.padding == "right" else np.full(batch, ids.shape[1] - 1)
        past = layout.empty_past(batch)
        positions = np.where(mask == 0, 0, np.cumsum(mask, axis=1) - 1).astype(np.int64)
        rng = np.random.default_rng(sampling.seed)
        finished = np.zeros(batch, dtype=bool)
        tokens: list[Any] = []
        logits_seen: list[Any] = []
        current = ids
        for step in range(max_new_tokens):
            feeds = {"input_ids": current, "attention_mask": mask, **past}
            if layout.position_ids:
                feeds["position_ids"] = positions
            logits, present = self.step(feeds)
            last = logits[rows, last_at if step == 0 else -1, :].astype(np.float32)
            if keep_logits:
                logits_seen.append(last)
            chosen = _choose(last, sampling, rng)
            chosen = np.where(finished, pad, chosen)
            tokens.append(chosen)
            if on_step is not None:
                on_step(step, tuple(int(t) for t in chosen))
            finished |= np.isin(chosen, list(eos)) if eos else False
            if finished.all():
                break
            past = dict(zip(layout.past_names, present))
            current = chosen[:, None].astype(np.int64)
            positions = mask.sum(axis=1, keepdims=True)  # the real tokens so far: the next one's position
            mask = np.concatenate([mask, np.ones((batch, 1), dtype=np.int64)], axis=1)
        new = np.stack(tokens, axis=1)
        return GenerationRun(
            tuple(tuple(int(t) for t in p) for p in prompts),
            tuple(tuple(int(t) for t in row) for row in new),
            tuple(logits_seen),
            self.provider.used,
            time.perf_counter() - t0,
        )


def _choose(logits: Any, sampling: Sampling, rng: Any) -> Any:
    """The next token per row: the argmax, or a draw from the softmax of the tempered top-k logits."""
    import numpy as np

    if not sampling.sample:
        return logits.argmax(axis=-1)
    scaled = logits.astype(np.float64) / sampling.temperature
    if 0 < sampling.top_k < scaled.shape[-1]:
        kth = np.sort(scaled, axis=-1)[:, -sampling.top_k][:, None]
        scaled = np.where(scaled < kth, -np.inf, scaled)
    probs = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    return np.array([rng.choice(probs.shape[-1], p=row) for row in probs], dtype=np.int64)
