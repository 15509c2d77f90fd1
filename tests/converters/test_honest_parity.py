"""Honest parity both ways on hand-written models with the constructs that fill exporters' issue trackers:
a branch on a size, integer floor division, an STFT front end, random ops, inputs the source refuses.

Every exit-0 conversion is re-run on ONNX Runtime at sizes the validator did not use and compared with
the source directly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from onnxbridge.parity.fixtures import OUTPUTS, load_cases
from tests.cli.test_bad_input import assert_clean_error
from tests.conftest import files_in
from tests.parity.conftest import flat

MODELS = Path(__file__).resolve().parent.parent / "models" / "torch_models.py"


def src(name: str) -> str:
    return f"{MODELS}:{name}"


def models():
    from tests.converters.test_pytorch import torch_models

    return torch_models()


def ort_run(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


def compared_sizes(report_json: dict, axis: str) -> set[int]:
    return set(report_json["validation"]["dynamic_axes"][axis])


@pytest.mark.route("torch.export/dynamo")
def test_a_branch_on_a_size_fails_naming_the_axis_range_and_line(tmp_path, run_cli):
    """Exported at seq=8, `if x.shape[1] > 24` is wrong from seq=25: torch.export recorded [2, 24]. Before,
    the sweep tried seq 1 and 11 and passed."""
    out, rep = tmp_path / "branch.onnx", tmp_path / "branch.json"
    r = run_cli("convert", src("shape_branch"), "-o", out, "--input", "x:batch,seq,8", "--no-simplify", "--report", rep)
    assert r.code == 1, r.err
    text = flat(r.out)
    assert "the exported model is valid only for seq=1..24" in text
    assert "torch_models.py:" in text and "if x.shape[1] > 24:" in text
    assert "declare seq=1..24 in --input" in text
    v = json.loads(rep.read_text())["validation"]
    (seq,) = [a for a in v["axes"] if a["axis"] == "seq"]
    assert seq["outcome"] == "export_narrowed" and seq["exported"] == [2, 24] and seq["declared"] == [1, None]
    by_label = {c["label"]: c for c in v["cases"]}
    assert by_label["seq=24"]["passed"] and not by_label["seq=25"]["passed"] and not by_label["seq=35"]["passed"]


@pytest.mark.route("torch.export/dynamo")
def test_the_same_branch_passes_once_the_range_is_declared(tmp_path, run_cli):
    out, rep = tmp_path / "branch.onnx", tmp_path / "branch.json"
    r = run_cli(
        "convert", src("shape_branch"), "-o", out, "--input", "x:batch,seq=1..24,8", "--no-simplify", "--report", rep
    )
    assert r.code == 0, r.out + r.err
    d = json.loads(rep.read_text())
    assert compared_sizes(d, "seq") == {1, 8, 11, 24}  # the declared bounds, never past them
    (seq,) = [a for a in d["axis_ranges"] if a["axis"] == "seq"]
    assert (seq["lo"], seq["hi"]) == (2, 24) and "if x.shape[1] > 24:" in seq["guard"]
    meta = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}["onnxbridge.axis_ranges"])
    assert meta["seq"]["declared"] == [1, 24] and meta["seq"]["exported"] == [2, 24]
    # a later validate reads the declared range back from the metadata: no need to repeat it
    assert run_cli("validate", src("shape_branch"), out, "--input", "x:batch,seq,8").code == 0
    model, _ = models().shape_branch()
    for seq in (5, 17, 23):
        x = np.random.default_rng(seq).standard_normal((3, seq, 8)).astype(np.float32)
        with torch.no_grad():
            np.testing.assert_allclose(ort_run(out, {"x": x})[0], model(torch.from_numpy(x)).numpy(), atol=1e-5)


@pytest.mark.route("torch.export/dynamo")
def test_fixtures_saved_without_validation_keep_to_the_declared_range(tmp_path, run_cli):
    """`--no-validate --save-*` writes the cases validation would run: never a size past the declared range
    (before: seq=35, where this export differs from the source, so the gate's replay failed a right model)."""
    out, ins, outs = tmp_path / "branch.onnx", tmp_path / "in.npz", tmp_path / "out.npz"
    r = run_cli(
        "convert",
        src("shape_branch"),
        "-o",
        out,
        "--input",
        "x:batch,seq=1..24,8",
        "--no-simplify",
        "--no-validate",
        "--save-inputs",
        ins,
        "--save-outputs",
        outs,
    )
    assert r.code == 0, r.out + r.err
    sizes = {feeds["x"].shape[1] for _, feeds in load_cases(ins)}
    assert max(sizes) == 24 and 1 in sizes, sizes
    # the saved outputs are the source's, and the ONNX file reproduces every one of them
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    expected = dict(load_cases(outs, OUTPUTS))
    for label, feeds in load_cases(ins):
        (want,) = expected[label].values()
        np.testing.assert_allclose(sess.run(None, feeds)[0], want, atol=1e-5, err_msg=label)
    assert run_cli("validate", out, "--inputs", ins, "--expected", outs).code == 0


@pytest.mark.route("torch.export/dynamo")
def test_integer_floor_division_draws_divisors_in_the_examples_range(tmp_path, run_cli):
    """The example's divisor lies in 1..6; before, generated ints in [0, 100) held 0, the *source* raised
    ZeroDivisionError and the verdict was "parity FAILED"."""
    out, saved = tmp_path / "div.onnx", tmp_path / "in.npz"
    r = run_cli(
        "convert",
        src("floor_div"),
        "-o",
        out,
        "--input",
        "a:batch,6:int64",
        "--input",
        "b:batch,6:int64",
        "--save-inputs",
        saved,
    )
    assert r.code == 0, r.out + r.err
    with np.load(saved) as data:
        divisors = np.concatenate([data[k].ravel() for k in data.files if k.endswith("::b")])
        numerators = np.concatenate([data[k].ravel() for k in data.files if k.endswith("::a")])
    assert divisors.min() >= 1 and divisors.max() <= 6
    assert numerators.min() >= -50 and numerators.max() <= 49 and numerators.min() < 0
    rng = np.random.default_rng(5)
    a = rng.integers(-1000, 1000, (7, 6)).astype(np.int64)
    b = rng.choice([-9, -2, 1, 3, 7], (7, 6)).astype(np.int64)
    np.testing.assert_array_equal(ort_run(out, {"a": a, "b": b})[0], np.floor_divide(a, b))


@pytest.mark.route("torch.export/dynamo")
def test_stft_sizes_the_source_cannot_run_are_listed_not_failed(tmp_path, run_cli):
    """An STFT with reflect padding cannot run fewer than 33 samples *in PyTorch*; before, size 1 made the
    verdict "parity FAILED". Now it is listed, and 33 (the smallest size the source runs) is checked."""
    out, rep = tmp_path / "stft.onnx", tmp_path / "stft.json"
    r = run_cli("convert", src("stft"), "-o", out, "--input", "wav:batch,samples", "--no-simplify", "--report", rep)
    assert r.code == 0, r.out + r.err
    v = json.loads(rep.read_text())["validation"]
    listed = {c["label"]: c for c in v["cases"] if c["kind"] == "source_limit"}
    assert set(listed) == {"samples=1", "samples=32"}
    assert "Padding size should be less than" in listed["samples=1"]["error"]
    (samples,) = [a for a in v["axes"] if a["axis"] == "samples"]
    assert samples["smallest_runnable"] == 33 and samples["exported"] == [33, None]
    assert samples["outcome"] == "source_limit"
    assert {33, 403, 803} <= compared_sizes({"validation": v}, "samples")  # 2 x 400 + 3: well beyond the export
    model, _ = models().stft()
    for n in (40, 777):
        wav = np.random.default_rng(n).standard_normal((3, n)).astype(np.float32)
        with torch.no_grad():
            np.testing.assert_allclose(
                ort_run(out, {"wav": wav})[0], model(torch.from_numpy(wav)).numpy(), atol=1e-4, rtol=1e-3
            )


def test_a_source_that_does_not_repeat_is_named_not_judged(tmp_path, run_cli):
    """`torch.randn_like` in forward: before, "parity FAILED"; now the verdict names the random op."""
    r = run_cli(
        "convert", src("noisy"), "-o", tmp_path / "noisy.onnx", "--input", "x:batch,8", "--no-simplify", "--json"
    )
    assert r.code == 1
    v = json.loads(r.out)["validation"]
    assert v["source_repeats"] is False and v["passed"] is False
    assert "the source does not repeat" in v["nondeterminism"]
    assert "aten.randn_like.default at torch_models.py:" in v["nondeterminism"]
    assert "torch.randn_like(h)" in v["nondeterminism"]


def test_a_source_that_refuses_every_generated_input_is_exit_2_naming_it(tmp_path, run_cli):
    """The example runs; no draw within its range does (steps must ascend): exit 2 naming the input."""
    r = run_cli("convert", src("ascending"), "-o", tmp_path / "a.onnx", "--no-simplify")
    assert_clean_error(r, 2, "the source cannot run any generated input", "input 'steps'", "steps must be ascending")


def test_inputs_generated_from_input_specs_alone_that_the_source_refuses(tmp_path, run_cli):
    r = run_cli(
        "convert", src("Gated"), "-o", tmp_path / "g.onnx", "--input", "x:batch,4", "--input", "gate:batch,4:int64"
    )
    assert_clean_error(r, 2, "cannot run the inputs generated from --input", "input 'gate'", "gate must be all ones")
    assert files_in(tmp_path) == set()


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("x:batch,8=1..24,8", "puts a range on the fixed size 8"),
        ("x:batch,seq=30..40,8", "the example input has seq=8, outside the declared range seq=30..40"),
        ("x:batch,seq=24..1,8", "the upper bound is below the lower bound"),
        ("x:batch,seq=..,8", "is not NAME=LO..HI"),
    ],
)
def test_bad_ranges_are_usage_errors(tmp_path, run_cli, spec, needle):
    r = run_cli("convert", src("shape_branch"), "-o", tmp_path / "b.onnx", "--input", spec)
    assert_clean_error(r, 2, needle)
    assert files_in(tmp_path) == set()


def test_two_ranges_for_one_axis_are_a_usage_error(tmp_path, run_cli):
    r = run_cli(
        "convert",
        src("floor_div"),
        "-o",
        tmp_path / "d.onnx",
        "--input",
        "a:batch=1..4,6:int64",
        "--input",
        "b:batch=1..8,6:int64",
    )
    assert_clean_error(r, 2, "axis 'batch' is given two ranges: 1..4 and 1..8")


@pytest.mark.route("torchscript")
def test_exporter_dumps_stay_off_the_terminal(tmp_path, capfd):
    """The TorchScript exporter prints the whole IR graph from C++ when a pass fails (~190 KB for Whisper,
    whose masking code uses aten::diff, as this model does); Python-level redirection missed it."""
    from onnxbridge.cli import main

    code = main(
        ["convert", src("Diff"), "-o", str(tmp_path / "d.onnx"), "--input", "x:batch,8", "--route", "torchscript"]
    )
    out, err = capfd.readouterr()
    assert code == 3
    assert "aten::diff" in err and "Torch IR graph" not in out + err
    assert out == "" and len(err) < 1000, err


def test_export_errors_keep_the_dimension_they_are_about():
    """torch.export's 0/1 conflict names the dimension on its second line; first_line dropped it."""
    from onnxbridge._util import summarize_error

    model = torch.nn.Linear(4, 2)
    with pytest.raises(Exception) as e:
        torch.export.export(model, (torch.randn(1, 4),), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},), strict=False)
    text = summarize_error(e.value).text()
    assert "conflicts between user-specified ranges and inferred ranges" in text
    assert "specialized due to hint of 1 for dimension input 'input' dim 0" in text, text


def test_routes_leave_every_modules_mode_as_it_was():
    """Exporters call .train()/.eval() recursively: each route restores the flags it found (a model left
    training makes dropout and drop-path turn every later reference run random)."""
    from onnxbridge.api import load_source
    from onnxbridge.converters.base import ExportRequest
    from onnxbridge.converters.torch_routes import DynamoRoute, TorchScriptRoute

    _, loaded = load_source(src("nested_outputs"), inputs=["features:batch,6", "scale:batch,1"])
    loaded.model.lin.train()  # one submodule deliberately in training mode; keyword inputs: the adapter path
    for route in (TorchScriptRoute(), DynamoRoute()):
        route.export(loaded, ExportRequest())
        assert [m.training for m in loaded.model.modules()].count(True) == 1
        assert loaded.model.lin.training
