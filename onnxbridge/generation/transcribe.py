"""``onnxbridge generate OUT_DIR --audio FILE.wav``: speech-to-text through a Whisper with-past folder.

Audio (a WAV of 16/32-bit PCM or 32-bit float, or a ``.npy`` of float samples) becomes log-mel features
through the folder's ``preprocessor_config.json`` (transformers' WhisperFeatureExtractor, read offline);
``.npy`` features can be given instead. The decoder starts from the prompt transformers' Whisper
``generate()`` builds for a plain greedy run: the start token, the language (given, from the generation
config, or detected from the first step's logits over the language tokens), the task, and
``<|notimestamps|>``; ``suppress_tokens`` / ``begin_suppress_tokens`` are never / not first chosen."""

from __future__ import annotations

import json
import struct
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError

__all__ = ["WhisperPrompt", "audio_features", "decoder_prompts", "read_audio", "read_features"]

_FIX = "give a mono or stereo WAV (16/32-bit PCM or 32-bit float) or a .npy of float samples"


def _fail(path: Path, what: str, fix: str = _FIX) -> InputError:
    return InputError(f"{path}: {what}", fix)


def _float_wav(path: Path) -> tuple[Any, int, int]:
    """A WAVE_FORMAT_IEEE_FLOAT file (the stdlib ``wave`` reads PCM only): samples, rate, channels."""
    import numpy as np

    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise _fail(path, "not a WAV file (no RIFF/WAVE header)")
    pos, fmt, body = 12, None, None
    while pos + 8 <= len(data):
        kind, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if kind == b"fmt ":
            fmt = struct.unpack("<HHIIHH", data[pos + 8 : pos + 24])
        elif kind == b"data":
            body = data[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)
    if fmt is None or body is None:
        raise _fail(path, "a WAV file without a fmt or data chunk")
    tag, channels, rate, _, _, bits = fmt
    if tag != 3 or bits not in (32, 64):
        raise _fail(path, f"WAV format tag {tag} with {bits}-bit samples is not supported")
    return np.frombuffer(body, dtype="<f4" if bits == 32 else "<f8").astype(np.float32), rate, channels


def read_audio(path: str | Path, rate: int) -> Any:
    """Mono float32 samples at ``rate`` Hz from a WAV (channels averaged) or a ``.npy`` of samples."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise _fail(path, "no such file")
    if path.suffix.lower() == ".npy":
        samples = _npy(path, "audio samples")
        if samples.ndim != 1 or samples.dtype.kind != "f":
            raise _fail(path, f"a {samples.dtype} array of shape {samples.shape}", "give a 1-D float array of samples")
        return samples.astype(np.float32)
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, got = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
        if width not in (1, 2, 4):
            raise _fail(path, f"{8 * width}-bit PCM is not supported")
        kind = {1: "u1", 2: "<i2", 4: "<i4"}[width]
        ints = np.frombuffer(raw, dtype=kind).astype(np.float32)
        samples = (ints - 128.0) / 128.0 if width == 1 else ints / float(2 ** (8 * width - 1))
    except wave.Error as e:
        if "unknown format: 3" not in str(e):
            raise _fail(path, f"not a readable WAV file ({e})") from e
        samples, got, channels = _float_wav(path)
    except (EOFError, struct.error) as e:
        raise _fail(path, f"a truncated WAV file ({e})") from e
    if got != rate:
        raise _fail(
            path,
            f"sampled at {got} Hz; the model's feature extractor takes {rate} Hz (no resampling here)",
            f"resample it first, e.g. ffmpeg -i {path.name} -ar {rate} -ac 1 {path.stem}-{rate}.wav",
        )
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
    return samples


def _npy(path: Path, what: str) -> Any:
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise _fail(path, f"not a .npy file of {what} ({e})", f"save the {what} with numpy.save") from e


def _extractor(folder: Path) -> Any:
    from ..converters.hf_folder import offline

    if not (folder / "preprocessor_config.json").is_file():
        raise InputError(
            f"{folder} has no preprocessor_config.json to turn audio into features",
            "copy the source folder's preprocessor_config.json beside the graphs, or give --input-features",
        )
    with offline():
        from transformers import WhisperFeatureExtractor

        try:
            return WhisperFeatureExtractor.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise InputError(f"{folder}/preprocessor_config.json does not load ({e})", "copy it again") from e


def audio_features(folder: Path, audio: Sequence[Any], shape: tuple[int, int]) -> Any:
    """Log-mel features ``[batch, mels, frames]`` of each audio (a path, or float samples at the
    extractor's rate), padded to the extractor's chunk; longer audio is refused, not cut."""
    import numpy as np

    fe = _extractor(folder)
    rate, chunk = int(fe.sampling_rate), int(fe.n_samples)
    rows = []
    for a in audio:
        samples = read_audio(a, rate) if isinstance(a, (str, Path)) else np.asarray(a, dtype=np.float32)
        if samples.ndim != 1 or samples.size == 0:
            raise UsageError(f"audio of shape {samples.shape}: give 1-D samples", _FIX)
        if samples.size > chunk:
            raise UsageError(
                f"{a if isinstance(a, (str, Path)) else 'the audio'}: {samples.size / rate:.2f} s is longer than "
                f"the model's {chunk / rate:.2f} s window (long-form transcription is not supported)",
                f"split it into pieces of at most {chunk / rate:.2f} s",
            )
        rows.append(samples)
    feats = fe(rows, sampling_rate=rate, return_tensors="np")["input_features"].astype(np.float32)
    if tuple(feats.shape[1:]) != shape:
        raise InputError(
            f"{folder}/preprocessor_config.json gives features of shape {tuple(feats.shape[1:])}; the encoder "
            f"takes {shape} (mel bins, frames)",
            "copy the preprocessor_config.json of the model the folder was converted from",
        )
    return feats


def read_features(path: str | Path, shape: tuple[int, int]) -> Any:
    """``[batch, mels, frames]`` (or ``[mels, frames]``) float features from a ``.npy`` file."""
    import numpy as np

    path = Path(path)
    if not path.is_file():
        raise _fail(path, "no such file", "give a .npy of log-mel features")
    feats = _npy(path, "log-mel features")
    if feats.ndim == 2:
        feats = feats[None]
    if feats.ndim != 3 or tuple(feats.shape[1:]) != shape or feats.dtype.kind != "f":
        raise _fail(
            path,
            f"features of shape {feats.shape} ({feats.dtype})",
            f"the encoder takes float [batch, {shape[0]}, {shape[1]}] (mel bins, frames)",
        )
    return feats.astype(np.float32)


@dataclass(frozen=True)
class WhisperPrompt:
    """What the folder's generation config asks of a plain greedy run: start token, language / task /
    no-timestamps tokens, tokens to suppress, and the language tokens to detect from."""

    start: int
    language: int | None
    task: int | None
    no_timestamps: int | None
    detect_from: tuple[int, ...]
    suppress: tuple[int, ...]
    begin_suppress: tuple[int, ...]

    def tokens(self, language: int | None) -> tuple[int, ...]:
        """The decoder's first tokens after ``start``."""
        lang = self.language if self.language is not None else language
        return tuple(t for t in (lang, self.task, self.no_timestamps) if t is not None)


def _ints(value: Any) -> tuple[int, ...]:
    return tuple(v for v in value or () if isinstance(v, int))


def decoder_prompts(folder: Path, language: str | None = None, translate: bool = False) -> WhisperPrompt:
    """The decoder prompt of transformers' Whisper ``generate()`` for the folder's generation config
    (its ``language`` / ``task``, else its legacy ``forced_decoder_ids``), ``language`` / ``translate``
    overriding them."""
    path = folder / "generation_config.json"
    try:
        gen = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: unreadable ({e})", "re-run convert to write it again") from e
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    start = gen.get("decoder_start_token_id", config.get("decoder_start_token_id"))
    if not isinstance(start, int):
        raise InputError(f"{path} has no decoder_start_token_id", "re-run convert to write it again")
    langs: dict[str, int] = gen.get("lang_to_id") or {}
    tasks: dict[str, int] = gen.get("task_to_id") or {}
    lang_name = language or gen.get("language")
    task_name = "translate" if translate else gen.get("task")
    lang_id = task_id = None
    if lang_name is not None:
        lang_id = _language_id(lang_name, langs, path)
    if task_name is not None:
        if task_name not in tasks:
            raise UsageError(
                f"the task {task_name!r} is not in {path}'s task_to_id ({sorted(tasks)})", "drop --translate"
            )
        task_id = tasks[task_name]
    elif lang_id is not None and "transcribe" in tasks:
        task_id = tasks["transcribe"]
    if lang_name is None and task_name is None:  # the legacy form: [[1, lang], [2, task], [3, notimestamps]]
        forced = [f for f in gen.get("forced_decoder_ids") or config.get("forced_decoder_ids") or () if len(f) == 2]
        forced_ids = [f[1] for i, f in enumerate(forced) if f[0] == i + 1]
        if forced_ids and forced_ids[0] in langs.values():
            lang_id = forced_ids[0]
        task_id = next((t for t in forced_ids if t in tasks.values()), None)
    timestamps = bool(gen.get("return_timestamps"))
    no_ts = gen.get("no_timestamps_token_id") if not timestamps else None
    detect = tuple(langs.values()) if lang_id is None else ()
    return WhisperPrompt(
        start,
        lang_id,
        task_id,
        no_ts if isinstance(no_ts, int) else None,
        detect,
        _ints(gen.get("suppress_tokens")),
        _ints(gen.get("begin_suppress_tokens")),
    )


def _language_id(name: str, langs: dict[str, int], path: Path) -> int:
    from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

    name = name.lower()
    code = TO_LANGUAGE_CODE.get(name, name.strip("<|>"))
    token = f"<|{code}|>"
    if token not in langs:
        raise UsageError(
            f"language {name!r} is not in {path}'s lang_to_id",
            f"one of: {', '.join(sorted(t.strip('<|>') for t in langs)) or '(none: drop --language)'}",
        )
    return langs[token]
