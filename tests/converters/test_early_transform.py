"""The TorchScript route's torch.export probe runs in a forked child beside the export; the route loop checks
the product and simplifies it while the probe's answers (the verdict on value branches, the exported range
of each axis) are still coming in. The answers must be the ones a convert that waits for the probe first
gets: the same verdicts, the same cases, the same simplify check, whatever the ranges turn out to be.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

import onnxbridge
from onnxbridge.api import _convert
from onnxbridge.converters import forked
from onnxbridge.converters.base import ExportedModel

MODELS = Path(__file__).resolve().parent.parent / "models" / "torch_models.py"
SHAPE_BRANCH = f"{MODELS}:shape_branch"  # `if x.shape[1] > 24`: torch.export records seq in [2, 24]


def _convert_watched(monkeypatch, out: Path, inputs: list[str], *, fork: bool) -> tuple[dict, list[str]]:
    """Convert ``shape_branch`` through the TorchScript route; (the report without its timings, what happened
    in order: "transform" for each simplify pass, "settle" when a pending product's answers were awaited)."""
    events: list[str] = []
    transform, settled = _convert._transform, ExportedModel.settled

    def watch_transform(*args, **kwargs):
        events.append("transform")
        return transform(*args, **kwargs)

    def watch_settled(self):
        if self.pending_ranges is not None:
            events.append("settle")
        return settled(self)

    monkeypatch.setattr(_convert, "_transform", watch_transform)
    monkeypatch.setattr(ExportedModel, "settled", watch_settled)
    if not fork:  # no child: the route probes in process before it returns, as a one-CPU machine does
        monkeypatch.setattr(forked, "fork_call", lambda fn: None)
    report = onnxbridge.convert(SHAPE_BRANCH, out, inputs=inputs, routes=["torchscript"])
    monkeypatch.undo()
    data = report.to_dict()
    for key in ("timings", "peak_rss_bytes", "output"):
        data.pop(key)
    return json.loads(json.dumps(data).replace(str(out), "OUT")), events


def _without_seconds(value):
    """The report with every duration taken out (they differ between any two runs)."""
    if isinstance(value, dict):
        return {k: _without_seconds(v) for k, v in value.items() if not k.endswith(("seconds", "_s"))}
    if isinstance(value, list):
        return [_without_seconds(v) for v in value]
    return value


@pytest.mark.parametrize(
    "inputs, narrowed",
    [(["x:batch,seq=1..24,8"], False), (["x:batch,seq,8"], True)],
    ids=["declared-within-the-export-range", "export-narrower-than-declared"],
)
def test_simplifying_while_the_probe_runs_gives_the_answers_of_waiting_for_it(tmp_path, monkeypatch, inputs, narrowed):
    early, events = _convert_watched(monkeypatch, tmp_path / "early.onnx", inputs, fork=True)
    waited, waited_events = _convert_watched(monkeypatch, tmp_path / "waited.onnx", inputs, fork=False)
    assert waited_events == ["transform"]  # the in-process probe answered inside the route
    # forked: simplified before the answers came in; once more only when they narrowed an axis
    assert events == (["transform", "settle", "transform"] if narrowed else ["transform", "settle"])
    assert _without_seconds(early) == _without_seconds(waited)
    assert early["passed"] is (not narrowed)  # past seq=24 the export is wrong: exit 1 either way
    if narrowed:
        return
    # exit 0: the file itself, on ONNX Runtime, at sizes the validator did not use, against the source
    from tests.converters.test_pytorch import torch_models

    model, _ = torch_models().shape_branch()
    session = ort.InferenceSession(str(tmp_path / "early.onnx"), providers=["CPUExecutionProvider"])
    for batch, seq in ((1, 5), (3, 17), (4, 23)):
        x = np.random.default_rng(seq).standard_normal((batch, seq, 8)).astype(np.float32)
        (got,) = session.run(None, {"x": x})
        with torch.no_grad():
            want = model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_a_value_branch_found_while_the_product_is_checked_still_refuses_it(tmp_path):
    """The verdict on a traced `if` over tensor values comes in after the route returned its product: the
    product is refused then, as before, and nothing is written."""
    from onnxbridge.errors import ConversionError

    with pytest.raises(ConversionError, match="data-dependent control flow"):
        onnxbridge.convert(f"{MODELS}:Branchy", tmp_path / "b.onnx", inputs=["x:batch,4"], routes=["torchscript"])
    assert not any(tmp_path.iterdir())
