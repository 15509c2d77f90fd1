"""The torch.export probe's answers kept on disk (onnxbridge/converters/probe_cache.py): a second convert of
the same architecture reads them back instead of tracing again, with the same report, and nothing is read
back for code not known by a version, for another config, or from a damaged entry.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

import onnxbridge
from onnxbridge.converters import forked, probe_cache, torch_routes
from tests.converters.test_huggingface import _bert

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

MODELS = Path(__file__).resolve().parent.parent / "models" / "torch_models.py"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv("ONNXBRIDGE_NO_CACHE", raising=False)
    monkeypatch.setenv("ONNXBRIDGE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "probe"


def _report(report) -> str:
    """The report's JSON without durations, memory and the output path (they differ between any two runs)."""
    data = report.to_dict()
    for key in ("timings", "peak_rss_bytes", "output"):
        data.pop(key)
    return re.sub(r'"[a-z_.]*s": [0-9.e-]+', "", json.dumps(data, sort_keys=True))


def _no_probe(monkeypatch) -> None:
    """From here on, any torch.export probe (forked or in process) fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("probed although the answers were recorded")

    monkeypatch.setattr(forked, "fork_call", refuse)
    monkeypatch.setattr(torch_routes, "_torch_export", refuse)


def test_a_second_convert_reads_the_answers_back_with_the_same_report(tmp_path, cache, monkeypatch):
    folder = _bert(tmp_path / "bert")
    first = onnxbridge.convert(folder, tmp_path / "a.onnx")
    assert first.passed is True
    (entry,) = cache.iterdir()
    recorded = json.loads(entry.read_text())
    assert recorded["verdict"] is False and ["sequence", 2, 64, None] in recorded["axes"]

    _no_probe(monkeypatch)
    second = onnxbridge.convert(folder, tmp_path / "b.onnx")
    assert _report(second) == _report(first)  # the same ranges, so the same cases (64 and 65 swept)
    assert {(a.axis, a.hi) for a in second.conversion.axis_ranges} == {("batch", None), ("sequence", 64)}
    # the file itself, on ONNX Runtime, at sizes the validator did not use, against transformers
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(folder).eval()
    session = ort.InferenceSession(str(tmp_path / "b.onnx"), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    for batch, seq in ((1, 7), (3, 29)):
        rng = np.random.default_rng(seq)
        feeds = {
            "input_ids": rng.integers(0, 120, (batch, seq), dtype=np.int64),
            "attention_mask": np.ones((batch, seq), dtype=np.int64),
            "token_type_ids": np.zeros((batch, seq), dtype=np.int64),
        }
        feeds = {k: v for k, v in feeds.items() if k in names}
        (got,) = session.run(["logits"], feeds)
        with torch.no_grad():
            want = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_another_config_is_probed_again(tmp_path, cache):
    onnxbridge.convert(_bert(tmp_path / "a"), tmp_path / "a.onnx")
    report = onnxbridge.convert(_bert(tmp_path / "b", positions=48), tmp_path / "b.onnx")
    assert len(list(cache.iterdir())) == 2
    assert ("sequence", 48) in {(a.axis, a.hi) for a in report.conversion.axis_ranges}


def test_a_damaged_or_foreign_entry_is_a_miss(tmp_path, cache):
    folder = _bert(tmp_path / "bert")
    onnxbridge.convert(folder, tmp_path / "a.onnx")
    (entry,) = cache.iterdir()
    good = json.loads(entry.read_text())
    for bad in ("{not json", json.dumps({**good, "key": {**good["key"], "training": True}, "verdict": True})):
        entry.write_text(bad)
        report = onnxbridge.convert(folder, tmp_path / "a.onnx")  # probes again: the same answers as before
        assert report.passed is True
        assert ("sequence", 64) in {(a.axis, a.hi) for a in report.conversion.axis_ranges}
        assert json.loads(entry.read_text()) == good  # rewritten by the new probe


def test_code_not_known_by_a_version_is_never_cached(tmp_path, cache, monkeypatch):
    """A model from a Python file, or a transformers model whose forward was patched, is probed each time."""
    report = onnxbridge.convert(
        f"{MODELS}:shape_branch", tmp_path / "s.onnx", inputs=["x:batch,seq=1..24,8"], routes=["torchscript"]
    )
    assert report.passed is True
    assert not cache.exists() or not any(cache.iterdir())

    from onnxbridge.api import load_source

    _, loaded = load_source(str(_bert(tmp_path / "bert")))
    assert probe_cache._key(loaded) is not None
    inner = loaded.model.bert
    inner.forward = inner.forward  # an instance attribute: forward is no longer the class's own
    assert probe_cache._key(loaded) is None
    del inner.forward
    handle = inner.register_forward_hook(lambda *a: None)
    assert probe_cache._key(loaded) is None
    handle.remove()
    assert probe_cache._key(loaded) is not None
    monkeypatch.setenv("ONNXBRIDGE_NO_CACHE", "1")
    assert probe_cache.cache_dir() is None
