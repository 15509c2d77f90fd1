"""The ONNX Runtime loop over an encoder-decoder folder (:mod:`.seq2seq`'s three graphs): the encoder once,
``decoder_model.onnx`` for the first step, ``decoder_with_past_model.onnx`` for every later one; and its
generation parity against the source's own ``generate()``."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError
from ..results.generation import GenerationParity
from .graphs import DECODER, DECODER_WITH_PAST, ENCODER
from .loop import GenerationRun, Sampling, _choose, left_pad
from .parity import _plain_generation_config, compare_runs, default_prompts

__all__ = ["Seq2SeqSession", "is_seq2seq_folder", "seq2seq_parity", "start_token"]


def is_seq2seq_folder(path: Path) -> bool:
    return (path / ENCODER).is_file()


def start_token(model_or_config: Any) -> int:
    """The decoder's first token: the generation config's ``decoder_start_token_id``, else the config's."""
    for cfg in (getattr(model_or_config, "generation_config", None), getattr(model_or_config, "config", None)):
        v = getattr(cfg, "decoder_start_token_id", None)
        if isinstance(v, int):
            return v
    return 0


class Seq2SeqSession:
    """Three ONNX Runtime sessions over an encoder-decoder folder."""

    def __init__(self, folder: str | Path, provider: str = "cpu", *, merged: bool | None = None) -> None:
        """``merged``: run ``decoder_model_merged.onnx`` (True), the two decoders (False), or the two decoders
        where the folder has them, else the merged one (None)."""
        from ..runtime.providers import create_session
        from .merge import MERGED

        folder = Path(folder)
        if merged is None:
            merged = not (folder / DECODER).is_file() and (folder / MERGED).is_file()
        files = (ENCODER, MERGED) if merged else (ENCODER, DECODER, DECODER_WITH_PAST)
        missing = [f for f in files if not (folder / f).is_file()]
        if missing:
            raise InputError(
                f"{folder}: {missing[0]} is missing",
                "give the folder convert --task text2text-generation-with-past wrote",
            )
        self.merged = merged
        self.encoder, self.provider = create_session(str(folder / ENCODER), provider)
        self.decoder, _ = create_session(str(folder / files[1]), provider)
        self.with_past = self.decoder if merged else create_session(str(folder / DECODER_WITH_PAST), provider)[0]
        self.past_names = [i.name for i in self.with_past.get_inputs() if i.name.startswith("past_key_values.")]
        self._kv = {
            i.name: (i.shape[1], i.shape[3], "float16" if "float16" in i.type else "float32")
            for i in self.with_past.get_inputs()
            if i.name in self.past_names
        }

    def _empty_past(self, batch: int) -> dict[str, Any]:
        """The merged decoder's first step: every past ``[batch, heads, 0, head_dim]``."""
        import numpy as np

        return {n: np.zeros((batch, h, 0, d), dtype=dtype) for n, (h, d, dtype) in self._kv.items()}

    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int,
        *,
        start: int,
        pad: int = 0,
        eos: Sequence[int] = (),
        sampling: Sampling | None = None,
        keep_logits: bool = False,
        on_step: Callable[[int, tuple[int, ...]], None] | None = None,
    ) -> GenerationRun:
        """As :meth:`.loop.DecoderSession.generate`; the prompts (left-padded) are the encoder's input and
        the decoder starts from ``start``."""
        ids, mask = left_pad(prompts, pad)
        run = self.decode(
            {"input_ids": ids, "attention_mask": mask},
            mask,
            max_new_tokens,
            start=start,
            pad=pad,
            eos=eos,
            sampling=sampling,
            keep_logits=keep_logits,
            on_step=on_step,
        )
        return GenerationRun(
            tuple(tuple(int(t) for t in p) for p in prompts), run.tokens, run.logits, run.provider, run.seconds
        )

    def decode(
        self,
        encoder_feeds: dict[str, Any],
        mask: Any,
        max_new_tokens: int,
        *,
        start: int,
        pad: int = 0,
        eos: Sequence[int] = (),
        sampling: Sampling | None = None,
        keep_logits: bool = False,
        on_step: Callable[[int, tuple[int, ...]], None] | None = None,
        prompt: Sequence[Sequence[int]] = (),
        suppress: Sequence[int] = (),
        begin_suppress: Sequence[int] = (),
        encoder_states: Any = None,
    ) -> GenerationRun:
        """The encoder on ``encoder_feeds`` once, then up to ``max_new_tokens`` decoder steps per row
        (``mask``: the encoder's attention mask, None for a graph that takes none, e.g. Whisper's).

        ``prompt``: each row's decoder tokens after ``start`` in the first step (Whisper's language / task
        tokens; rows of one length); ``encoder_states``: the encoder's output when already computed;
        ``suppress`` tokens are never chosen, ``begin_suppress`` not at the first step (Whisper's
        generation config)."""
        import numpy as np

        sampling = sampling or Sampling()
        if max_new_tokens < 1:
            raise UsageError(f"--max-new-tokens {max_new_tokens} must be >= 1", "e.g. --max-new-tokens 32")
        t0 = time.perf_counter()
        states = self.encoder.run(None, encoder_feeds)[0] if encoder_states is None else encoder_states
        batch = states.shape[0]
        extra = {"encoder_attention_mask": mask} if mask is not None else {}
        current = np.array([[start, *p] for p in prompt] if prompt else [[start]] * batch, dtype=np.int64)
        rng = np.random.default_rng(sampling.seed)
        finished = np.zeros(batch, dtype=bool)
        tokens, seen = [], []
        past: dict[str, np.ndarray] = self._empty_past(batch) if self.merged else {}
        for step in range(max_new_tokens):
            session = self.decoder if step == 0 else self.with_past
            feeds = {**extra, "input_ids": current, "encoder_hidden_states": states, **past}
            if self.merged:
                feeds["use_cache_branch"] = np.array([step > 0])
            inputs = {i.name for i in session.get_inputs()}
            outs = session.run(None, {k: v for k, v in feeds.items() if k in inputs})
            by_name = dict(zip([o.name for o in session.get_outputs()], outs))
            last = by_name["logits"][:, -1, :].astype(np.float32)
            if keep_logits:
                seen.append(last)
            banned = [*suppress, *(begin_suppress if step == 0 else ())]
            scored = last.copy() if banned else last
            if banned:
                scored[:, banned] = -np.inf
            chosen = np.where(finished, pad, _choose(scored, sampling, rng))
            tokens.append(chosen)
            if on_step is not None:
                on_step(step, tuple(int(t) for t in chosen))
            finished |= np.isin(chosen, list(eos)) if eos else False
            if finished.all():
                break
            for name in self.past_names:  # the encoder's keys and values come from the first step only
                present = name.replace("past_key_values.", "present.")
                if present in by_name and (step == 0 or ".encoder." not in name):
                    past[name] = by_name[present]
            current = chosen[:, None].astype(np.int64)
        new = np.stack(tokens, axis=1)
        return GenerationRun(
            tuple(() for _ in range(batch)),
            tuple(tuple(int(t) for t in row) for row in new),
            tuple(seen),
            self.provider.used,
            time.perf_counter() - t0,
        )


def _source_generate(
    model: Any, prompts: Sequence[Sequence[int]], new_tokens: int, pad: int, start: int, features: Any = None
) -> GenerationRun:
    """The source's greedy ``generate()``; for speech (``features``) the generic one of transformers'
    GenerationMixin: Whisper's own adds token suppression and timestamp rules the graphs do not contain."""
    import torch
    from transformers import GenerationMixin

    t0 = time.perf_counter()
    if features is not None:
        inputs, run = {"input_features": torch.from_numpy(features)}, lambda **kw: GenerationMixin.generate(model, **kw)
    else:
        ids, mask = left_pad(prompts, pad)
        inputs, run = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask)}, model.generate
    with torch.no_grad(), _plain_generation_config(model, pad, decoder_start_token_id=start):
        # a GenerateOutput (return_dict_in_generate=True); transformers' hint is a union with LongTensor
        out: Any = run(
            **inputs,
            do_sample=False,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            output_logits=True,
            return_dict_in_generate=True,
        )
    new = out.sequences[:, 1:].numpy()
    return GenerationRun(
        tuple(tuple(p) for p in prompts),
        tuple(tuple(int(t) for t in r) for r in new),
        tuple(step.float().numpy() for step in out.logits),
        "torch",
        time.perf_counter() - t0,
    )


def seq2seq_parity(
    model: Any,
    folder: Path,
    *,
    new_tokens: int = 32,
    pad: int = 0,
    prompts: Sequence[Sequence[int]] | None = None,
    provider: str = "cpu",
    logits_atol: float = 1e-3,
    tie_tolerance: float = 1e-3,
    seed: int = 0,
) -> GenerationParity:
    """Generation parity of the graphs against the source's greedy ``generate()`` (see :mod:`.parity`):
    prompts of different lengths (left-padded), or for a speech model three random log-mel inputs; then the
    first alone. A folder with both the two decoders and ``decoder_model_merged.onnx`` has each judged on
    the same source run; the verdict is the first failing one's (else the two decoders')."""
    import numpy as np

    from .merge import MERGED

    t0 = time.perf_counter()
    sessions = [Seq2SeqSession(folder, provider, merged=False)] if (folder / DECODER).is_file() else []
    if (folder / MERGED).is_file() or not sessions:
        sessions.append(Seq2SeqSession(folder, provider, merged=True))
    start = start_token(model)
    speech = "input_features" in {i.name for i in sessions[0].encoder.get_inputs()}
    verdicts: list[list[Any]] = [[] for _ in sessions]
    if speech:
        from .speech import features_shape

        feats = np.random.default_rng(seed).standard_normal((3, *features_shape(model))).astype(np.float32)
        for batch in (feats, feats[:1]):
            theirs = _source_generate(model, [()] * len(batch), new_tokens, pad, start, features=batch)
            for session, into in zip(sessions, verdicts):
                ours = session.decode(
                    {"input_features": batch}, None, new_tokens, start=start, pad=pad, keep_logits=True
                )
                into.append(compare_runs(ours, theirs, logits_atol, tie_tolerance))
    else:
        prompts = tuple(tuple(p) for p in (prompts or default_prompts(int(model.config.vocab_size), seed)))
        for rows in (prompts, prompts[:1]):
            theirs = _source_generate(model, rows, new_tokens, pad, start)
            for session, into in zip(sessions, verdicts):
                ours = session.generate(rows, new_tokens, start=start, pad=pad, keep_logits=True)
                into.append(compare_runs(ours, theirs, logits_atol, tie_tolerance))
    failing = [v for v in verdicts if not all(r.passed for batch in v for r in batch)]
    chosen = (failing or verdicts)[0]
    return GenerationParity(
        new_tokens,
        logits_atol,
        tie_tolerance,
        sessions[0].provider.used,
        chosen[0],
        time.perf_counter() - t0,
        chosen[1],
    )
