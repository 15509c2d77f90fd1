"""Generation parity: the written decoder's greedy KV-cache loop (:mod:`.loop`) against the source's own
``generate()`` with plain greedy settings (``do_sample=False``, no end-of-sequence stop, no processor the
graph does not contain), on prompts of different lengths left-padded in one batch, then the first alone."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ..results.generation import GenerationParity, RowVerdict, TokenStep, Verdict
from .loop import DecoderSession, GenerationRun, left_pad

__all__ = ["compare_runs", "default_prompts", "generation_parity", "source_generate"]

PROMPT_LENGTHS = (7, 3, 12)


def default_prompts(vocab: int, seed: int = 0, lengths: Sequence[int] = PROMPT_LENGTHS) -> tuple[tuple[int, ...], ...]:
    """Random prompts of different lengths (ids from 3 up, past the usual special tokens)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    low = 3 if vocab > 6 else 0
    return tuple(tuple(int(t) for t in rng.integers(low, vocab, n)) for n in lengths)


@contextlib.contextmanager
def _plain_generation_config(model: Any, pad: int, **keep: Any) -> Iterator[None]:
    """The model's generation config replaced by a plain one for the duration (no end-of-sequence
    stop, no repetition penalty or other processor the folder's generation_config.json may ask for)."""
    from transformers import GenerationConfig

    before = model.generation_config
    model.generation_config = GenerationConfig(pad_token_id=pad, **keep)
    try:
        yield
    finally:
        model.generation_config = before


def source_generate(model: Any, prompts: Sequence[Sequence[int]], new_tokens: int, pad: int) -> GenerationRun:
    """The source's ``generate()``: greedy, exactly ``new_tokens`` tokens, with the raw logits of each step."""
    import torch

    ids, mask = left_pad(prompts, pad)
    t0 = time.perf_counter()
    with torch.no_grad(), _plain_generation_config(model, pad):
        out = model.generate(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            do_sample=False,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=pad,
        )
    new = out.sequences[:, ids.shape[1] :].numpy()
    return GenerationRun(
        tuple(tuple(p) for p in prompts),
        tuple(tuple(int(t) for t in r) for r in new),
        tuple(step.float().numpy() for step in out.logits),
        "torch",
        time.perf_counter() - t0,
    )


def compare_runs(
    onnx: GenerationRun, source: GenerationRun, logits_atol: float, tie_tolerance: float
) -> tuple[RowVerdict, ...]:
    """Each row's verdict, judged step by step up to its first difference."""
    import numpy as np

    rows = []
    for r, prompt in enumerate(source.prompts):
        steps: list[TokenStep] = []
        verdict: Verdict = "same"
        at: int | None = None
        reason: str | None = None
        for k in range(len(source.tokens[r])):
            if k >= len(onnx.tokens[r]):
                verdict, at, reason = "diverges", k - 1 if k else None, f"the ONNX loop stopped after {k} tokens"
                break
            ref, got = source.logits[k][r], onnx.logits[k][r]
            top2 = np.sort(ref)[-2:]
            gap = float(top2[1] - top2[0]) if ref.size > 1 else float("inf")
            err = float(np.max(np.abs(ref - got)))
            step = TokenStep(k, onnx.tokens[r][k], source.tokens[r][k], err, gap)
            steps.append(step)
            scale = max(1.0, float(np.max(np.abs(ref))))
            drift = not err <= logits_atol * scale
            if step.token != step.source_token:
                at = k
                verdict = "tie" if gap <= tie_tolerance * scale and not drift else "diverges"
                reason = (
                    None
                    if verdict == "tie"
                    else (
                        f"logits max_abs {err:.3g} exceeds {logits_atol:g}"
                        if drift
                        else f"top-2 gap {gap:.3g} is clear"
                    )
                )
                break
            if drift:
                verdict, at, reason = "diverges", k, f"same token but logits max_abs {err:.3g} exceeds {logits_atol:g}"
                break
        rows.append(RowVerdict(tuple(prompt), verdict, tuple(steps), at, reason))
    return tuple(rows)


def generation_parity(
    model: Any,
    folder_or_graph: Any,
    *,
    new_tokens: int = 32,
    pad: int = 0,
    prompts: Sequence[Sequence[int]] | None = None,
    provider: str = "cpu",
    logits_atol: float = 1e-3,
    tie_tolerance: float = 1e-3,
    seed: int = 0,
) -> GenerationParity:
    """The verdict of the written decoder against ``model``'s own ``generate()``: the prompts left-padded
    in one batch, then the first prompt alone (batch 1)."""
    t0 = time.perf_counter()
    vocab = int(model.config.get_text_config().vocab_size)
    prompts = tuple(tuple(p) for p in (prompts or default_prompts(vocab, seed)))
    session = DecoderSession(folder_or_graph, provider)
    verdicts = []
    for batch in (prompts, prompts[:1]):
        ours = session.generate(batch, new_tokens, pad=pad, keep_logits=True)
        theirs = source_generate(model, batch, new_tokens, pad)
        verdicts.append(compare_runs(ours, theirs, logits_atol, tie_tolerance))
    return GenerationParity(
        new_tokens,
        logits_atol,
        tie_tolerance,
        session.provider.used,
        verdicts[0],
        time.perf_counter() - t0,
        verdicts[1],
    )
