"""``onnxbridge.generate``: prompts (text through the folder's tokenizer, or token ids) through a with-past
folder's KV-cache loop, greedy or sampled, stopping at the folder's end-of-sequence tokens."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError
from .loop import DecoderSession, Sampling

__all__ = ["TOKENIZER_FILES", "Generated", "folder_pad_id", "generate", "has_tokenizer", "parse_ids", "tokenizer"]

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


@dataclass(frozen=True)
class Generated:
    """The new tokens of each prompt (up to and including an end-of-sequence token), their text when
    the folder has a tokenizer, the provider that ran and the seconds taken."""

    prompts: tuple[tuple[int, ...], ...]
    tokens: tuple[tuple[int, ...], ...]
    texts: tuple[str, ...] | None
    provider: str
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return sum(len(t) for t in self.tokens) / self.seconds if self.seconds > 0 else 0.0


def parse_ids(text: str) -> tuple[int, ...]:
    """``"1,2,3"`` -> (1, 2, 3)."""
    try:
        ids = tuple(int(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError as e:
        raise UsageError(f"--prompt-ids {text!r} is not a list of integers", "e.g. --prompt-ids 1,2,3") from e
    if not ids or min(ids) < 0:
        raise UsageError(f"--prompt-ids {text!r} needs non-negative token ids", "e.g. --prompt-ids 1,2,3")
    return ids


def _generation_config(folder: Path) -> dict[str, Any]:
    return _json_file(folder / "generation_config.json")


def _json_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: unreadable ({e})", "re-run convert to write it again") from e


def _ids(value: Any) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,)
    return tuple(v for v in value or () if isinstance(v, int))


def folder_pad_id(folder: Path) -> int:
    """The id a with-past folder pads prompts with: generation_config.json's pad, else its first EOS, else 0."""
    gen = _generation_config(folder)
    return (_ids(gen.get("pad_token_id")) or _ids(gen.get("eos_token_id")) or (0,))[0]


def has_tokenizer(folder: Path) -> bool:
    """Whether the folder holds a tokenizer's files."""
    return any((folder / n).is_file() for n in TOKENIZER_FILES)


def tokenizer(folder: Path) -> Any:
    """The folder's tokenizer (read offline), or None when it has none."""
    if not has_tokenizer(folder):
        return None
    from ..converters.hf_folder import offline

    with offline():
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(
                f"{folder}: the tokenizer files do not load ({e})",
                "copy the source folder's tokenizer files, or use --prompt-ids",
            ) from e


def generate(
    folder: str | Path,
    prompts: Sequence[str] | str | None = None,
    *,
    prompt_ids: Sequence[Sequence[int]] | None = None,
    audio: Sequence[str | Path | Any] | str | Path | None = None,
    input_features: str | Path | Any | None = None,
    language: str | None = None,
    translate: bool = False,
    max_new_tokens: int = 32,
    sample: bool = False,
    temperature: float = 1.0,
    top_k: int = 0,
    seed: int = 0,
    provider: str = "cpu",
    on_token: Callable[[int, tuple[int, ...]], None] | None = None,
) -> Generated:
    """Generate from a with-past folder (``convert ... --task text-generation-with-past``, or an
    encoder-decoder's ``text2text-generation-with-past``: then the prompts are the encoder's input).

    ``prompts`` are text (the folder's tokenizer encodes them), ``prompt_ids`` token ids; several prompts are
    left-padded into one batch. Greedy unless ``sample`` (``temperature``, ``top_k``, ``seed``). A row stops
    at the folder's end-of-sequence tokens; ``on_token(step, tokens)`` sees each step's tokens as they come.

    A speech folder (``automatic-speech-recognition-with-past``) takes ``audio`` instead (WAV / ``.npy``
    paths or float sample arrays at the feature extractor's rate, one row each) or ``input_features``
    (a ``.npy`` path or an array ``[batch, mels, frames]``); ``language`` (``"en"``, ``"english"``) and
    ``translate`` set Whisper's prompt tokens, else the folder's generation config does (see
    :mod:`.transcribe`). ``prompts`` of the result are then each row's decoder prompt.
    """
    folder = Path(folder)
    from .seq2seq_loop import Seq2SeqSession, is_seq2seq_folder

    seq2seq = is_seq2seq_folder(folder)
    session = Seq2SeqSession(folder, provider) if seq2seq else DecoderSession(folder, provider)
    speech = isinstance(session, Seq2SeqSession) and "input_features" in {i.name for i in session.encoder.get_inputs()}
    if speech:
        if prompts is not None or prompt_ids is not None or (audio is None) == (input_features is None):
            raise UsageError(
                f"{folder} is a speech model: give exactly one of audio and input features, no prompt",
                "--audio FILE.wav or --input-features FEATURES.npy",
            )
        assert isinstance(session, Seq2SeqSession)
        return _speech(
            session,
            folder,
            audio,
            input_features,
            language,
            translate,
            max_new_tokens,
            Sampling(sample, temperature, top_k, seed),
            on_token,
        )
    if audio is not None or input_features is not None or language is not None or translate:
        raise UsageError(
            f"{folder} is not a speech model: it takes a prompt, not audio", '--prompt "..." or --prompt-ids 1,2,3'
        )
    if (prompts is None) == (prompt_ids is None):
        raise UsageError("give exactly one of a text prompt and prompt ids", '--prompt "..." or --prompt-ids 1,2,3')
    gen = _generation_config(folder)
    tok = tokenizer(folder)
    if prompts is not None:
        if tok is None:
            raise InputError(f"{folder} has no tokenizer files", "copy them beside model.onnx, or use --prompt-ids")
        texts = [prompts] if isinstance(prompts, str) else list(prompts)
        ids = [tuple(tok(t)["input_ids"]) for t in texts]
    else:
        ids = [tuple(int(i) for i in p) for p in prompt_ids or ()]
    eos = _ids(gen.get("eos_token_id"))
    pad = folder_pad_id(folder)
    sampling = Sampling(sample, temperature, top_k, seed)
    if isinstance(session, Seq2SeqSession):
        start = (
            _ids(gen.get("decoder_start_token_id"))
            or _ids(_json_file(folder / "config.json").get("decoder_start_token_id"))
            or (pad,)
        )
        run = session.generate(
            ids, max_new_tokens, start=start[0], pad=pad, eos=eos, sampling=sampling, on_step=on_token
        )
    else:
        run = session.generate(ids, max_new_tokens, pad=pad, eos=eos, sampling=sampling, on_step=on_token)
    tokens = tuple(_until_eos(row, eos) for row in run.tokens)
    texts_out = tuple(tok.decode(list(t), skip_special_tokens=True) for t in tokens) if tok is not None else None
    return Generated(run.prompts, tokens, texts_out, run.provider, run.seconds)


def _until_eos(row: tuple[int, ...], eos: tuple[int, ...]) -> tuple[int, ...]:
    for i, t in enumerate(row):
        if t in eos:
            return row[: i + 1]
    return row


def _speech(
    session: Any,
    folder: Path,
    audio: Any,
    input_features: Any,
    language: str | None,
    translate: bool,
    max_new_tokens: int,
    sampling: Sampling,
    on_token: Callable[[int, tuple[int, ...]], None] | None,
) -> Generated:
    """Whisper: features from the audio (or given), the prompt of :func:`.transcribe.decoder_prompts`
    (the language detected from the first step when the config leaves it open), then the KV-cache loop."""
    import numpy as np

    from .transcribe import audio_features, decoder_prompts, read_features

    shape = tuple(session.encoder.get_inputs()[0].shape[1:])
    if not all(isinstance(d, int) for d in shape):
        raise InputError(f"{folder}: the encoder's input_features has shape {shape}", "re-run convert")
    if audio is not None:
        rows = [audio] if isinstance(audio, (str, Path)) or getattr(audio, "ndim", 2) == 1 else list(audio)
        feats = audio_features(folder, rows, shape)
    elif isinstance(input_features, (str, Path)):
        feats = read_features(input_features, shape)
    else:
        feats = np.asarray(input_features, dtype=np.float32)
        feats = feats[None] if feats.ndim == 2 else feats
        if feats.ndim != 3 or tuple(feats.shape[1:]) != shape:
            raise UsageError(f"input features of shape {feats.shape}", f"give [batch, {shape[0]}, {shape[1]}]")
    plan = decoder_prompts(folder, language, translate)
    states = session.encoder.run(None, {"input_features": feats})[0]
    detected: list[int | None] = [None] * len(feats)
    if plan.detect_from:  # transformers' detect_language: the first step's argmax over the language tokens
        first = session.decode({}, None, 1, start=plan.start, keep_logits=True, encoder_states=states).logits[0]
        ids = np.array(plan.detect_from)
        detected = [int(ids[np.argmax(row[ids])]) for row in first]
    rows_prompt = [plan.tokens(d) for d in detected]
    gen = _generation_config(folder)
    eos = _ids(gen.get("eos_token_id"))
    pad = folder_pad_id(folder)
    run = session.decode(
        {},
        None,
        max_new_tokens,
        start=plan.start,
        pad=pad,
        eos=eos,
        sampling=sampling,
        on_step=on_token,
        prompt=rows_prompt,
        suppress=plan.suppress,
        begin_suppress=plan.begin_suppress,
        encoder_states=states,
    )
    tokens = tuple(_until_eos(row, eos) for row in run.tokens)
    tok = tokenizer(folder)
    texts = tuple(tok.decode(list(t), skip_special_tokens=True) for t in tokens) if tok is not None else None
    prompts = tuple((plan.start, *p) for p in rows_prompt)
    return Generated(prompts, tokens, texts, run.provider, run.seconds)
