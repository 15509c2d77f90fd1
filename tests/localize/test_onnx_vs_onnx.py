"""debug A.onnx B.onnx: the first diverging node of a 60-node model, and a repro that shows it alone."""

from __future__ import annotations

import json
import shlex

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from onnxbridge import api
from tests.conftest import files_in

from .onnx_chain import chain, to_fp16


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chain")
    for name, model in {
        "a": chain(),
        "b": chain(scale={"W5": 1.05}),
        "renamed": chain(scale={"W5": 1.05}, prefix="t_"),
        "same": chain(prefix="t_"),
    }.items():
        onnx.save(model, folder / f"{name}.onnx")
    return folder


def test_one_changed_initializer_is_named_and_the_repro_reproduces_alone(files, tmp_path, run_cli):
    assert len(chain().graph.node) >= 50
    rep = tmp_path / "where.json"
    r = run_cli("debug", files / "a.onnx", files / "b.onnx", "--repro-dir", tmp_path, "--report", rep)
    assert r.code == 1, r.out + r.err
    loc = json.loads(rep.read_text())["localization"]
    assert loc["broken_stage"] == "b" and loc["direction"] == "onnx"
    first = loc["first"]
    assert (first["name"], first["class_name"], first["where"]) == ("mm5", "MatMul", "its own op")
    assert first["onnx_nodes"] == ["mm5"] and first["reference_value"] == "h5_0"
    # every value before block 5 was compared and passes; nothing earlier is blamed
    at = next(c["position"] for c in loc["layers"] if c["name"] == "h5_0")
    before = [c for c in loc["layers"] if c["position"] < at]
    assert before and all(c["passed"] for c in before)
    # the repro: one MatMul, fed with A's values, expecting A's output; it shows the difference on its own
    repro = loc["repro"]
    assert repro["nodes"] == 1 and repro["reproduces"] is True
    sub = onnx.load(repro["onnx"])
    assert [n.op_type for n in sub.graph.node] == ["MatMul"] and [i.name for i in sub.graph.input] == ["x5"]
    with np.load(repro["fixtures"], allow_pickle=False) as z:
        feeds = {"x5": z["inputs::repro::x5"]}
        expected = z["outputs::repro::h5_0"]
    (got,) = ort.InferenceSession(repro["onnx"], providers=["CPUExecutionProvider"]).run(None, feeds)
    assert not np.allclose(got, expected, atol=1e-4, rtol=1e-3)
    w = onnx.numpy_helper.to_array(next(i for i in chain().graph.initializer if i.name == "W5"))
    np.testing.assert_allclose(feeds["x5"] @ w, expected, rtol=1e-5, atol=1e-6)  # expected is A's value
    # and onnxbridge replays it: exit 1 while the bug is there
    assert run_cli("validate", repro["onnx"], "--expected", repro["fixtures"]).code == 1


def test_a_tiny_budget_takes_more_rounds_and_finds_the_same_node(files):
    wide = api.debug(str(files / "a.onnx"), files / "b.onnx").localization
    narrow = api.debug(str(files / "a.onnx"), files / "b.onnx", budget_mb=0.0005).localization
    assert wide.first.name == narrow.first.name == "mm5"
    assert narrow.passes > wide.passes and narrow.values_marked < wide.values_marked


def test_names_that_do_not_line_up_are_paired_by_structure(files):
    loc = api.debug(str(files / "a.onnx"), files / "renamed.onnx").localization
    assert loc.first is not None and loc.first.name == "t_mm5"
    assert (loc.first.reference_value, loc.first.candidate_value) == ("h5_0", "t_h5_0")


def test_the_same_model_under_other_names_is_not_a_false_alarm(files, run_cli):
    r = run_cli("debug", files / "a.onnx", files / "same.onnx", "--json")
    assert r.code == 0, r.err
    loc = json.loads(r.out)["localization"]
    assert loc["diverges"] is False and loc["broken_stage"] is None and loc["first"] is None
    assert loc["compared"] > 10 and all(c["passed"] for c in loc["layers"])


def test_fp16_within_its_tolerance_passes_and_an_fp16_overflow_is_named(tmp_path):
    a = chain()
    onnx.save(a, tmp_path / "a.onnx")
    onnx.save(to_fp16(chain()), tmp_path / "a16.onnx")
    ok = api.debug(str(tmp_path / "a.onnx"), tmp_path / "a16.onnx")
    assert ok.passed is True and ok.localization.diverges is False
    big = chain(scale={"W7": 1e5})  # finite in float32, beyond float16's 65504
    onnx.save(big, tmp_path / "big.onnx")
    onnx.save(to_fp16(chain(scale={"W7": 1e5})), tmp_path / "big16.onnx")
    bad = api.debug(str(tmp_path / "big.onnx"), tmp_path / "big16.onnx", repro_dir=tmp_path)
    assert bad.passed is False
    first = bad.localization.first
    assert first.name == "mm7" and first.note == "NaN/Inf on one side only"
    assert bad.localization.repro is not None and bad.localization.repro.reproduces


def test_validate_localize_says_where_and_writes_nothing_when_parity_holds(files, tmp_path, run_cli):
    out = tmp_path / "out"
    out.mkdir()
    r = run_cli("validate", files / "a.onnx", files / "same.onnx", "--localize", "--repro-dir", out, "--json")
    assert r.code == 0 and json.loads(r.out).get("localization") is None and files_in(out) == set()
    r = run_cli("validate", files / "a.onnx", files / "b.onnx", "--localize", "--repro-dir", out, "--json")
    assert r.code == 1
    d = json.loads(r.out)
    assert d["localization"]["first"]["name"] == "mm5"
    assert files_in(out) == {"b.repro.onnx", "b.repro.npz"}
    # without --localize, a failed validation names the command that says where (and a pass names none)
    assert not [
        n
        for n in json.loads(run_cli("validate", files / "a.onnx", files / "same.onnx", "--json").out)["notes"]
        if "onnxbridge debug" in n
    ]
    r = run_cli("validate", files / "a.onnx", files / "b.onnx", "--json")
    (note,) = [n for n in json.loads(r.out)["notes"] if "to see where it breaks" in n]
    command = shlex.split(note.split(": ", 1)[1])
    assert command[:4] == ["onnxbridge", "debug", str(files / "a.onnx"), str(files / "b.onnx")]
    r = run_cli(*command[1:], "--json")
    assert r.code == 1 and json.loads(r.out)["localization"]["first"]["name"] == "mm5"


def test_a_difference_that_vanishes_once_values_are_observed_is_blamed_on_a_fusion(monkeypatch):
    """Simulated: B's output is off only in a plain, fully optimised session (nothing marked but the
    outputs), as when an ONNX Runtime fusion is wrong; marking values switches such fusions off."""
    from onnxbridge.localize import graph
    from onnxbridge.localize.compare import Scorer
    from onnxbridge.localize.onnx_side import localize_onnx

    a, b = chain(), chain(prefix="t_")
    run = graph.ValueFetcher.run

    def fused_b(self, feeds, names):
        out = run(self, feeds, names)
        if self.model is b and self.opt_level != "disable" and list(names) == ["y"]:
            out["y"] = out["y"] + 1.0
        return out

    monkeypatch.setattr(graph.ValueFetcher, "run", fused_b)
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    found = localize_onnx(a, b, {"x": x}, Scorer(), budget_bytes=1 << 20)
    assert found.divergence is None
    assert any("comes from an ONNX Runtime graph fusion" in n for n in found.notes)
