"""Localise a failed generation parity: replay the prompts step by step through the with-past graph and
through the source with its own cache (the export's wrapper, its present fed back as its past), feeding
both the source's greedy tokens, and compare every ``present.{i}.key/.value`` and the logits per step
over the unmasked positions. The first (step, layer, key | value), or the logits, beyond tolerance is
where the cache diverges."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError, UsageError
from ..results.cache_debug import CacheCheck, CacheDivergence, CacheTensor
from .loop import DecoderSession, left_pad

if TYPE_CHECKING:
    from ..results import Report

__all__ = ["compare_tensor", "debug_with_past", "replay_cache"]


def compare_tensor(step: int, name: str, ref: Any, got: Any, mask: Any, atol: float, pads: Sequence[int]) -> CacheCheck:
    """One output compared over the unmasked positions: ``present`` tensors are ``[batch, heads, total,
    head_dim]`` against a ``[batch, total]`` mask, logits ``[batch, seq, vocab]`` against the mask's
    last ``seq`` columns."""
    import numpy as np

    is_logits = name == "logits"
    if ref.shape != got.shape:
        raise InputError(
            f"step {step}: the graph's {name} has shape {list(got.shape)}, the source's {list(ref.shape)}",
            "the folder was not exported from this source; give the folder convert wrote for it",
        )
    ref, got = ref.astype(np.float64), got.astype(np.float64)
    if is_logits:
        keep = mask[:, -ref.shape[1] :].astype(bool)[:, :, None]
        offset = mask.shape[1] - ref.shape[1]
    else:
        keep = mask.astype(bool)[:, None, :, None]
        offset = 0
    diff = np.where(keep, np.abs(ref - got), 0.0)
    diff = np.where(np.isnan(diff), np.inf, diff)
    scale = max(1.0, float(np.max(np.where(keep, np.abs(ref), 0.0))) if ref.size else 1.0)
    index = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.size else (0, 0, 0, 0)
    row = int(index[0])
    position = int(index[1] if is_logits else index[2]) + offset
    parts = name.split(".")
    tensor: CacheTensor = "logits" if is_logits else ("key" if parts[-1] == "key" else "value")
    return CacheCheck(
        step=step,
        name=name,
        layer=None if is_logits else int(parts[1]),
        tensor=tensor,
        max_abs=float(diff.max()) if diff.size else 0.0,
        tolerance=atol * scale,
        row=row,
        head=None if is_logits else int(index[1]),
        position=position,
        token=position - int(pads[row]),
    )


def replay_cache(
    model: Any,
    folder: str | Path,
    prompts: Sequence[Sequence[int]],
    *,
    new_tokens: int = 32,
    pad: int = 0,
    atol: float = 1e-3,
    provider: str = "cpu",
) -> CacheDivergence:
    """Replay ``prompts`` (left-padded in one batch) for up to ``new_tokens`` steps through ``folder``'s
    model.onnx and ``model`` (a transformers causal LM), stopping after the first step where an output
    leaves the source (see :class:`~onnxbridge.results.CacheDivergence`)."""
    import numpy as np

    from .export import WithPastWrapper, cache_layout, run_wrapper

    t0 = time.perf_counter()
    session = DecoderSession(folder, provider)
    layout = session.layout
    source_layout = cache_layout(model)
    if source_layout.layers != layout.layers or source_layout.position_ids != layout.position_ids:
        raise InputError(
            f"{folder}: the graph has {layout.layers} cache layers"
            f"{'' if layout.position_ids else ', no position_ids'}; the source has {source_layout.layers}"
            f"{'' if source_layout.position_ids else ', no position_ids'}",
            "give the with-past folder convert wrote for this source",
        )
    wrapper = WithPastWrapper(model, source_layout)
    ids, mask = left_pad(prompts, pad)
    pads = [ids.shape[1] - len(p) for p in prompts]
    batch = ids.shape[0]
    positions = np.where(mask == 0, 0, np.cumsum(mask, axis=1) - 1).astype(np.int64)
    ours = theirs = layout.empty_past(batch)
    names = [o.name for o in session.session.get_outputs()]
    order = (*layout.present_names, "logits")
    steps: list[CacheCheck] = []
    checks: list[CacheCheck] = []
    tokens: list[Any] = []
    current = ids
    for step in range(new_tokens):
        feeds = {"input_ids": current, "attention_mask": mask}
        if layout.position_ids:
            feeds["position_ids"] = positions
        want = dict(zip(layout.output_names, run_wrapper(wrapper, source_layout, {**feeds, **theirs})))
        got = dict(zip(names, session.session.run(None, {**feeds, **ours})))
        checks = [compare_tensor(step, n, want[n], got[n], mask, atol, pads) for n in order]
        steps.append(max(checks, key=lambda c: c.max_abs / c.tolerance))
        first = next((c for c in checks if not c.passed), None)
        if first is not None:
            return _result(folder, prompts, new_tokens, atol, session, steps, checks, first, tokens, t0)
        chosen = want["logits"][:, -1, :].argmax(axis=-1).astype(np.int64)
        tokens.append(chosen)
        theirs = {p: want[n] for p, n in zip(layout.past_names, layout.present_names)}
        ours = {p: got[n] for p, n in zip(layout.past_names, layout.present_names)}
        current = chosen[:, None]
        mask = np.concatenate([mask, np.ones((batch, 1), dtype=np.int64)], axis=1)
        positions = positions[:, -1:] + 1
    return _result(folder, prompts, new_tokens, atol, session, steps, checks, None, tokens, t0)


def _result(
    folder: str | Path,
    prompts: Sequence[Sequence[int]],
    new_tokens: int,
    atol: float,
    session: DecoderSession,
    steps: list[CacheCheck],
    checks: list[CacheCheck],
    first: CacheCheck | None,
    tokens: list[Any],
    t0: float,
) -> CacheDivergence:
    import numpy as np

    fed = np.stack(tokens, axis=1) if tokens else np.zeros((len(prompts), 0), dtype=np.int64)
    return CacheDivergence(
        folder=str(folder),
        prompts=tuple(tuple(int(t) for t in p) for p in prompts),
        new_tokens=new_tokens,
        atol=atol,
        provider=session.provider.used,
        steps=tuple(steps),
        at_first=tuple(checks),
        first=first,
        tokens=tuple(tuple(int(t) for t in row) for row in fed),
        seconds=time.perf_counter() - t0,
    )


def debug_with_past(
    source: str,
    folder: str | Path,
    *,
    trust: bool = False,
    new_tokens: int = 32,
    atol: float | None = None,
    provider: str = "auto",
    seed: int = 0,
    progress: Any = None,
) -> Report:
    """``debug SOURCE OUT_DIR``: the generation parity's prompts (``seed``), left-padded in one batch, then
    the first alone, replayed through ``folder`` and the source; the report's ``cache_divergence`` names
    the first (step, layer, key | value) beyond ``atol`` (default 1e-3, as the generation parity's logits)."""
    from .._util import no_progress
    from ..results import Report
    from .lm_source import load_lm_source, pad_id
    from .parity import default_prompts
    from .seq2seq_loop import is_seq2seq_folder

    say = progress or no_progress
    if is_seq2seq_folder(Path(folder)):
        raise UsageError(
            f"{folder} holds an encoder-decoder: debug replays a decoder-only with-past folder (model.onnx)",
            "run onnxbridge validate SOURCE OUT_DIR for its generation verdict",
        )
    if not (Path(folder) / "model.onnx").is_file():
        raise InputError(f"{folder}: no model.onnx", "give the folder convert --task text-generation-with-past wrote")
    if new_tokens < 1:
        raise UsageError(f"--new-tokens {new_tokens} must be >= 1", "e.g. --new-tokens 32")
    say(f"loading {source}")
    t0 = time.perf_counter()
    model = load_lm_source(source, trust).model
    load_s = time.perf_counter() - t0
    prompts = default_prompts(int(model.config.get_text_config().vocab_size), seed)
    run = "cpu" if provider == "auto" else provider
    tol = 1e-3 if atol is None else atol
    say(f"replaying {len(prompts)} prompts for up to {new_tokens} steps through {folder} and the source")
    result = replay_cache(model, folder, prompts, new_tokens=new_tokens, pad=pad_id(model), atol=tol, provider=run)
    if result.passed:  # the first prompt alone, as the generation parity runs it too
        alone = replay_cache(
            model, folder, prompts[:1], new_tokens=new_tokens, pad=pad_id(model), atol=tol, provider=run
        )
        result = alone if not alone.passed else result
    return Report(
        command="debug",
        source=source,
        framework="huggingface",
        output=str(folder),
        cache_divergence=result,
        timings={"load_s": load_s, "localize_s": result.seconds},
    )
