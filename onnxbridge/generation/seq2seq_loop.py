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
from .loop import GenerationRun, Sampling, _choose, left_pad
from .parity import _plain_generation_config, compare_runs, default_prompts
from .seq2seq import DECODER, DECODER_WITH_PAST, ENCODER

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

    def __init__(self, folder: str | Path, provider: str = "cpu") -> None:
        from ..runtime.providers import create_session

        folder = Path(folder)
        missing = [f for f in (ENCODER, DECODER, DECODER_WITH_PAST) if not (folder / f).is_file()]
        if missing:
            raise InputError(f"{folder}: {missing[0]} is missing",
                             "give the folder convert --task text2text-generation-with-past wrote")
        self.encoder, self.provider = create_session(str(folder / ENCODER), provider)
        self.decoder, _ = create_session(str(folder / DECODER), provider)
        self.with_past, _ = create_session(str(folder / DECODER_WITH_PAST), provider)
        self.past_names = [i.name for i in self.with_past.get_inputs() if i.name.startswith("past_key_values.")]

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, *, start: int, pad: int = 0,
                 eos: Sequence[int] = (), sampling: Sampling | None = None, keep_logits: bool = False,
                 on_step: Callable[[int, tuple[int, ...]], None] | None = None) -> GenerationRun:
        """As :meth:`.loop.DecoderSession.generate`; the decoder starts from ``start``."""
        import numpy as np

        sampling = sampling or Sampling()
        if max_new_tokens < 1:
            raise UsageError(f"--max-new-tokens {max_new_tokens} must be >= 1", "e.g. --max-new-tokens 32")
        t0 = time.perf_counter()
        ids, mask = left_pad(prompts, pad)
        batch = ids.shape[0]
        (states,) = self.encoder.run(None, {"input_ids": ids, "attention_mask": mask})
        current = np.full((batch, 1), start, dtype=np.int64)
        rng = np.random.default_rng(sampling.seed)
        finished = np.zeros(batch, dtype=bool)
        tokens, seen, past = [], [], {}
        for step in range(max_new_tokens):
            if step == 0:
                outs = self.decoder.run(None, {"encoder_attention_mask": mask, "input_ids": current,
                                               "encoder_hidden_states": states})
                names = [o.name for o in self.decoder.get_outputs()]
            else:
                outs = self.with_past.run(None, {"encoder_attention_mask": mask, "input_ids": current, **past})
                names = [o.name for o in self.with_past.get_outputs()]
            by_name = dict(zip(names, outs))
            last = by_name["logits"][:, -1, :].astype(np.float32)
            if keep_logits:
                seen.append(last)
            chosen = np.where(finished, pad, _choose(last, sampling, rng))
            tokens.append(chosen)
            if on_step is not None:
                on_step(step, tuple(int(t) for t in chosen))
            finished |= np.isin(chosen, list(eos)) if eos else False
            if finished.all():
                break
            for name in self.past_names:  # the encoder's keys and values come from the first step only
                present = name.replace("past_key_values.", "present.")
                if present in by_name:
                    past[name] = by_name[present]
            current = chosen[:, None].astype(np.int64)
        new = np.stack(tokens, axis=1)
        return GenerationRun(tuple(tuple(int(t) for t in p) for p in prompts),
                             tuple(tuple(int(t) for t in row) for row in new), tuple(seen),
                             self.provider.used, time.perf_counter() - t0)


def _source_generate(model: Any, prompts: Sequence[Sequence[int]], new_tokens: int, pad: int,
                     start: int) -> GenerationRun:
    import torch

    ids, mask = left_pad(prompts, pad)
    t0 = time.perf_counter()
    with torch.no_grad(), _plain_generation_config(model, pad, decoder_start_token_id=start):
        out = model.generate(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                             do_sample=False, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             output_logits=True, return_dict_in_generate=True)
    new = out.sequences[:, 1:].numpy()
    return GenerationRun(tuple(tuple(p) for p in prompts), tuple(tuple(int(t) for t in r) for r in new),
                         tuple(step.float().numpy() for step in out.logits), "torch", time.perf_counter() - t0)


def seq2seq_parity(model: Any, folder: Path, *, new_tokens: int = 32, pad: int = 0,
                   prompts: Sequence[Sequence[int]] | None = None, provider: str = "cpu",
                   logits_atol: float = 1e-3, tie_tolerance: float = 1e-3, seed: int = 0) -> GenerationParity:
    """Generation parity of the three graphs against ``model.generate()`` (see :mod:`.parity`)."""
    t0 = time.perf_counter()
    prompts = tuple(tuple(p) for p in (prompts or default_prompts(int(model.config.vocab_size), seed)))
    session = Seq2SeqSession(folder, provider)
    start = start_token(model)
    verdicts = []
    for batch in (prompts, prompts[:1]):
        ours = session.generate(batch, new_tokens, start=start, pad=pad, keep_logits=True)
        theirs = _source_generate(model, batch, new_tokens, pad, start)
        verdicts.append(compare_runs(ours, theirs, logits_atol, tie_tolerance))
    return GenerationParity(new_tokens, logits_atol, tie_tolerance, session.provider.used, verdicts[0],
                            time.perf_counter() - t0, verdicts[1])
