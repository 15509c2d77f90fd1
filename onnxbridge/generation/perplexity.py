"""The text a quantised with-past copy is judged on: the bundled text (``generation/data/lighthouse.txt``)
or the user's, tokenized with the folder's tokenizer (or token ids given directly), the prompts cut from
it, and the perplexity of a folder's ``model.onnx`` over it (one prefill per window, no cache)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError
from .loop import DecoderSession
from .text import folder_pad_id, has_tokenizer, tokenizer

__all__ = ["BUNDLED_TEXT", "EvalText", "check_eval_source", "eval_text", "perplexity", "read_ids"]

BUNDLED_TEXT = Path(__file__).resolve().parent / "data" / "lighthouse.txt"
MIN_TOKENS = 64


@dataclass(frozen=True)
class EvalText:
    """Token ids to judge on, where they came from (one line), and the pad id for left-padded prompts."""

    ids: tuple[int, ...]
    source: str
    pad: int = 0

    def prompts(self, count: int, shortest: int = 8, step: int = 4) -> tuple[tuple[int, ...], ...]:
        """``count`` prompts of lengths ``shortest``, ``shortest + step``, ... cut at offsets spread over
        the text (different lengths: the batch is left-padded, as users' batches are)."""
        out = []
        for i in range(count):
            length = min(shortest + step * (i % 4), len(self.ids) - 1)
            start = (len(self.ids) - length) * i // max(count, 1)
            out.append(self.ids[start : start + length])
        return tuple(out)


def read_ids(path: Path) -> tuple[int, ...]:
    """Token ids from a file: integers separated by commas, spaces or new lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"{path}: unreadable ({e})", "give a text file of token ids, e.g. 5 17 3 ...") from e
    try:
        ids = tuple(int(t) for t in text.replace(",", " ").split())
    except ValueError as e:
        raise InputError(f"{path}: not a list of integer token ids", "write ids separated by spaces or commas") from e
    if any(i < 0 for i in ids):
        raise InputError(f"{path}: negative token ids", "token ids are >= 0")
    return ids


def check_eval_source(folder: Path, text: Path | None = None, ids: Path | None = None) -> None:
    """Exit 2 before any work when the text cannot be read as tokens: no ids and no tokenizer in ``folder``,
    or a named file that is not there."""
    for path in (text, ids):
        if path is not None and not path.is_file():
            raise UsageError(f"{path} does not exist", "give an existing file")
    if ids is None and not has_tokenizer(folder):
        raise UsageError(
            f"{folder} has no tokenizer to read the judging text with",
            "give token ids of a text with --eval-ids FILE (or copy the tokenizer files into the folder)",
        )


def eval_text(folder: Path, text: Path | None = None, ids: Path | None = None) -> EvalText:
    """The ids of ``ids`` (a file of token ids), else ``text`` (default: the bundled text) through the
    folder's tokenizer; a folder without a tokenizer needs ``ids`` (exit 2 otherwise)."""
    check_eval_source(folder, text, ids)
    pad = folder_pad_id(folder)
    if ids is not None:
        got = read_ids(ids)
        where = f"{len(got)} token ids from {ids}"
    else:
        tok = tokenizer(folder)
        path = text or BUNDLED_TEXT
        if tok is None:
            raise UsageError(f"{folder}: the tokenizer did not load", "give token ids with --eval-ids FILE")
        try:
            content = " ".join(path.read_text(encoding="utf-8").split())
        except OSError as e:
            raise InputError(f"{path}: unreadable ({e})", "give a UTF-8 text file with --eval-text") from e
        got = tuple(int(i) for i in tok(content, add_special_tokens=False)["input_ids"])
        where = f"{'the bundled text ' if text is None else ''}{path.name}: {len(got)} tokens (the folder's tokenizer)"
    if len(got) < MIN_TOKENS:
        raise InputError(f"{where}: fewer than {MIN_TOKENS} tokens", "give a longer text or more ids")
    return EvalText(got, where, pad)


def perplexity(session: DecoderSession, ids: Sequence[int], window: int = 128, rows_per_run: int = 4) -> float:
    """exp(mean negative log-likelihood) of each next token of ``ids``, cut into windows of ``window``
    tokens (prefill, empty cache; ``rows_per_run`` windows a call, so a large vocabulary's logits stay
    small); the ragged tail is left out."""
    import numpy as np

    width = min(window, len(ids))
    rows = len(ids) // width
    windows = np.asarray(ids[: rows * width], dtype=np.int64).reshape(rows, width)
    total, count = 0.0, 0
    for first in range(0, rows, rows_per_run):
        batch = windows[first : first + rows_per_run]
        feeds: dict[str, Any] = {
            "input_ids": batch,
            "attention_mask": np.ones_like(batch),
            **session.layout.empty_past(batch.shape[0]),
        }
        if session.layout.position_ids:
            feeds["position_ids"] = np.broadcast_to(np.arange(width, dtype=np.int64), batch.shape).copy()
        logits, _ = session.step(feeds)
        z = logits[:, :-1, :].astype(np.float64)
        z = z - z.max(axis=-1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
        total -= float(np.take_along_axis(logp, batch[:, 1:, None], axis=-1).sum())
        count += batch.shape[0] * (width - 1)
    return float(math.exp(total / count))
