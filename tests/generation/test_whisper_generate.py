"""``onnxbridge generate OUT_DIR --audio FILE.wav`` on a Whisper with-past folder: features from the
folder's preprocessor config, the decoder prompt (start, language detected or given, task, no timestamps)
and suppressions of transformers' Whisper ``generate()``, the same tokens as it; bad audio exits 2."""

from __future__ import annotations

import json
import struct
import wave
from pathlib import Path

import numpy as np
import pytest

import onnxbridge
from tests.generation.conftest import WHISPER_SPECIALS

pytestmark = pytest.mark.slow
NEW = 10


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000, channels: int = 1) -> Path:
    """16-bit PCM through the stdlib; ``samples`` float in [-1, 1], interleaved when ``channels`` > 1."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def write_float_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """WAVE_FORMAT_IEEE_FLOAT (tag 3), 32-bit, mono: the stdlib cannot write it."""
    body = samples.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * 4, 4, 32)
    path.write_bytes(
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(body))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(body))
        + body
    )
    return path


def tone(seconds: float, hz: float) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def hf_generate(folder: Path, audio: list[np.ndarray], **kw) -> np.ndarray:
    """transformers' Whisper generate() on the feature extractor's features, greedy, NEW tokens at most."""
    import torch
    import transformers as tf

    fe = tf.WhisperFeatureExtractor.from_pretrained(folder)
    feats = fe(audio, sampling_rate=16000, return_tensors="pt")["input_features"]
    model = tf.WhisperForConditionalGeneration.from_pretrained(folder).eval()
    with torch.no_grad():
        return model.generate(input_features=feats, do_sample=False, max_new_tokens=NEW, **kw).numpy()


def until_eos(row) -> list[int]:
    row = [int(t) for t in row]
    eot = WHISPER_SPECIALS["<|endoftext|>"]
    return row[: row.index(eot) + 1] if eot in row else row


def test_audio_reproduces_whisper_generate(whisper_folder, whisper_onnx, tmp_path, run_cli):
    assert (whisper_onnx / "preprocessor_config.json").is_file() and (whisper_onnx / "tokenizer_config.json").is_file()
    pcm = tone(0.75, 440)
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 9000).astype(np.float32)
    a = write_wav(tmp_path / "a.wav", pcm)
    b = write_float_wav(tmp_path / "b.wav", noise)
    pcm_read = (np.clip(pcm, -1, 1) * 32767).astype("<i2").astype(np.float32) / 32768
    want = hf_generate(whisper_folder, [pcm_read, noise])
    got = onnxbridge.generate(whisper_onnx, audio=[a, b], max_new_tokens=NEW)
    assert [list(t) for t in got.tokens] == [until_eos(r) for r in want]
    sot = WHISPER_SPECIALS["<|startoftranscript|>"]
    langs = (WHISPER_SPECIALS["<|en|>"], WHISPER_SPECIALS["<|fr|>"])
    assert all(p[0] == sot and p[1] in langs and p[-1] == WHISPER_SPECIALS["<|notimestamps|>"] for p in got.prompts)
    assert got.texts is not None and got.texts[0] and "<|" not in got.texts[0]
    # the suppressed tokens matter here: without them transformers picks one
    plain = hf_generate(whisper_folder, [pcm_read], suppress_tokens=[], begin_suppress_tokens=[])
    assert 21 in plain[0] and 21 not in got.tokens[0]

    res = run_cli("generate", whisper_onnx, "--audio", a, "--max-new-tokens", NEW)
    assert res.code == 0, res.err
    assert got.texts[0] in res.out
    res = run_cli("generate", whisper_onnx, "--audio", a, "--max-new-tokens", NEW, "--json")
    assert json.loads(res.out)["tokens"][0] == list(got.tokens[0])

    # stereo with the same signal in both channels: averaged to the mono signal
    stereo = write_wav(tmp_path / "s.wav", np.repeat(pcm, 2), channels=2)
    assert onnxbridge.generate(whisper_onnx, audio=stereo, max_new_tokens=NEW).tokens == got.tokens[:1]


def test_language_and_input_features(whisper_folder, whisper_onnx, tmp_path, run_cli):
    import transformers as tf

    pcm = tone(0.5, 300)
    want = hf_generate(whisper_folder, [pcm], language="fr")
    got = onnxbridge.generate(whisper_onnx, audio=[pcm], language="french", max_new_tokens=NEW)
    sp = WHISPER_SPECIALS
    assert got.prompts == ((sp["<|startoftranscript|>"], sp["<|fr|>"], sp["<|transcribe|>"], sp["<|notimestamps|>"]),)
    assert list(got.tokens[0]) == until_eos(want[0])

    feats = tf.WhisperFeatureExtractor.from_pretrained(whisper_folder)([pcm], sampling_rate=16000)["input_features"]
    np.save(tmp_path / "f.npy", np.asarray(feats, np.float32))
    res = run_cli(
        "generate",
        whisper_onnx,
        "--input-features",
        tmp_path / "f.npy",
        "--language",
        "fr",
        "--json",
        "--max-new-tokens",
        NEW,
    )
    assert res.code == 0, res.err
    assert json.loads(res.out)["tokens"][0] == list(got.tokens[0])


@pytest.mark.parametrize(
    "case, args, says",
    [
        ("text", ("--audio", "{tmp}/notes.wav"), "not a readable WAV"),
        ("rate", ("--audio", "{tmp}/8k.wav"), "8000 Hz"),
        ("long", ("--audio", "{tmp}/long.wav"), "longer than"),
        ("missing", ("--audio", "{tmp}/nope.wav"), "no such file"),
        ("npy2d", ("--audio", "{tmp}/samples2d.npy"), "1-D float"),
        ("features", ("--input-features", "{tmp}/bad.npy"), "the encoder takes"),
        ("prompt", ("--prompt-ids", "1,2"), "speech model"),
        ("both", ("--audio", "{tmp}/ok.wav", "--input-features", "{tmp}/bad.npy"), "exactly one"),
        ("language", ("--audio", "{tmp}/ok.wav", "--language", "de"), "lang_to_id"),
    ],
)
def test_bad_audio_exits_2(case, args, says, whisper_onnx, tmp_path, run_cli):
    (tmp_path / "notes.wav").write_text("not audio at all")
    write_wav(tmp_path / "8k.wav", tone(0.5, 440)[::2], rate=8000)
    write_wav(tmp_path / "long.wav", tone(1.5, 440))
    write_wav(tmp_path / "ok.wav", tone(0.5, 440))
    np.save(tmp_path / "samples2d.npy", np.zeros((2, 100), np.float32))
    np.save(tmp_path / "bad.npy", np.zeros((1, 8, 31), np.float32))
    res = run_cli("generate", whisper_onnx, *(a.format(tmp=tmp_path) for a in args))
    assert res.code == 2, (res.code, res.err)
    assert says in res.err and "Traceback" not in res.err


def test_audio_on_a_text_folder_exits_2(t5_onnx, tmp_path, run_cli):
    write_wav(tmp_path / "ok.wav", tone(0.5, 440))
    res = run_cli("generate", t5_onnx[0], "--audio", tmp_path / "ok.wav")
    assert res.code == 2 and "not a speech model" in res.err


@pytest.mark.parametrize(
    "config",
    [
        {},  # a plain config: the start token alone
        {"language": "fr", "task": "translate"},
        {"language": "<|en|>"},  # transcribe is implied
        {"forced_decoder_ids": [[1, 94], [2, 96], [3, 98]]},  # the legacy form of the original checkpoints
        {"language": "en", "return_timestamps": True},  # no <|notimestamps|>
    ],
)
def test_decoder_prompt_is_whisper_generates(config, whisper_folder, tmp_path):
    """The prompt built from generation_config.json equals transformers' own (where no language is detected)."""
    import shutil

    import torch
    import transformers as tf

    from onnxbridge.generation.transcribe import decoder_prompts

    gen = json.loads((whisper_folder / "generation_config.json").read_text())
    if not config:
        gen = {"decoder_start_token_id": gen["decoder_start_token_id"]}
    gen.update(config)
    shutil.copy(whisper_folder / "config.json", tmp_path / "config.json")
    (tmp_path / "generation_config.json").write_text(json.dumps(gen))
    model = tf.WhisperForConditionalGeneration.from_pretrained(whisper_folder)
    want = model._retrieve_init_tokens(
        torch.zeros(1, 8, 32), 1, tf.GenerationConfig(**{"return_timestamps": False, **gen}), model.config, 32, {}
    )[0].tolist()
    plan = decoder_prompts(tmp_path)
    assert not plan.detect_from
    assert [plan.start, *plan.tokens(None)] == want
