"""Bad input: each case exits 2 (or 3), says what and how to fix it, and leaves no file behind."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import files_in

MODELS = Path(__file__).resolve().parent.parent / "models" / "torch_models.py"


def assert_clean_error(res, code: int, *needles: str) -> None:
    assert res.code == code, (res.code, res.out, res.err)
    assert "Traceback" not in res.err
    assert res.err.startswith("error: ")
    assert "hint: " in res.err
    for n in needles:
        assert n in res.err, res.err


@pytest.fixture
def tiny_onnx(tmp_path) -> Path:
    """y = x * w + 1, with a dynamic batch axis."""
    w = numpy_helper.from_array(np.full((4,), 2.0, dtype="float32"), "w")
    one = numpy_helper.from_array(np.ones((4,), dtype="float32"), "one")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "w"], ["t"]), helper.make_node("Add", ["t", "one"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [w, one],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    return path


def test_missing_source_file(tmp_path, run_cli):
    res = run_cli("convert", tmp_path / "nope.py:net", "-o", tmp_path / "out.onnx")
    assert_clean_error(res, 2, "does not exist")
    assert files_in(tmp_path) == set()


def test_missing_pt2_file(tmp_path, run_cli):
    res = run_cli("convert", tmp_path / "nope.pt2", "-o", tmp_path / "out.onnx")
    assert_clean_error(res, 2, "does not exist")


def test_source_name_that_does_not_exist(tmp_path, run_cli):
    res = run_cli("convert", f"{MODELS}:no_such_model", "-o", tmp_path / "out.onnx", "--input", "x:1,4")
    assert_clean_error(res, 2, "no name 'no_such_model'", "lstm")
    assert files_in(tmp_path) == set()


def test_source_that_is_not_a_model(tmp_path, run_cli):
    res = run_cli("convert", f"{MODELS}:not_a_model", "-o", tmp_path / "out.onnx")
    assert_clean_error(res, 2, "int")


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("x", "expected NAME:DIMS"),
        ("x:1,,3", "neither a positive integer nor an axis name"),
        ("x:0,3", "sizes must be positive"),
        ("x:1,3:complex7", "unknown dtype"),
        ("3x:1,3", "not a valid input name"),
    ],
)
def test_malformed_input_syntax(tmp_path, run_cli, spec, needle):
    res = run_cli("convert", f"{MODELS}:Wide", "-o", tmp_path / "out.onnx", "--input", spec)
    assert_clean_error(res, 2, "malformed --input", needle)
    assert files_in(tmp_path) == set()


def test_input_spec_that_does_not_fit_the_model(tmp_path, run_cli):
    res = run_cli("convert", f"{MODELS}:Wide", "-o", tmp_path / "out.onnx", "--input", "x:batch,5,16,16")
    assert_clean_error(res, 2, "do not fit", "x[2, 5, 16, 16]")
    assert files_in(tmp_path) == set()


def test_input_name_that_forward_does_not_take(tmp_path, run_cli):
    res = run_cli(
        "convert",
        f"{MODELS}:nested_outputs",
        "-o",
        tmp_path / "out.onnx",
        "--input",
        "features:batch,6",
        "--input",
        "bogus:batch,1",
    )
    assert_clean_error(res, 2, "bogus")


def test_no_inputs_known(tmp_path, run_cli):
    res = run_cli("convert", f"{MODELS}:Wide", "-o", tmp_path / "out.onnx")
    assert_clean_error(res, 2, "no inputs known", "forward takes: x")


@pytest.mark.parametrize("content", [b"", b"garbage, not protobuf \x00\xff" * 10], ids=["empty", "garbage"])
def test_garbage_onnx(tmp_path, run_cli, content):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    for args in (("inspect", bad), ("simplify", bad, "-o", tmp_path / "out.onnx")):
        res = run_cli(*args)
        assert_clean_error(res, 2, "bad.onnx")
    assert files_in(tmp_path) == {"bad.onnx"}


def test_truncated_onnx(tmp_path, run_cli, tiny_onnx):
    data = tiny_onnx.read_bytes()
    trunc = tmp_path / "trunc.onnx"
    trunc.write_bytes(data[: len(data) // 2])
    res = run_cli("simplify", trunc, "-o", tmp_path / "out.onnx")
    assert_clean_error(res, 2, "trunc.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_garbage_pt2(tmp_path, run_cli):
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(b"not a zip at all")
    res = run_cli("convert", bad, "-o", tmp_path / "out.onnx")
    assert_clean_error(res, 2, "not a .pt2 archive")
    zipped = tmp_path / "zipped.pt2"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("archive/whatever.txt", "hello")
    res = run_cli("convert", zipped, "-o", tmp_path / "out.onnx")
    assert_clean_error(res, 2, "zipped.pt2")
    assert not (tmp_path / "out.onnx").exists()


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, (f"touch {_Evil.sentinel}",))


def test_pt2_with_malicious_pickle_is_refused_and_never_runs(tmp_path, run_cli):
    import torch

    model = torch.nn.Linear(4, 2).eval()
    ep = torch.export.export(model, (torch.randn(2, 4),))
    good = tmp_path / "good.pt2"
    torch.export.save(ep, str(good))
    sentinel = tmp_path / "pwned"
    _Evil.sentinel = sentinel
    evil_blob = io.BytesIO()
    torch.save({"w": _Evil()}, evil_blob)
    evil = tmp_path / "evil.pt2"
    # two places torch.export.load unpickles with weights_only=False: the sample inputs, and
    # weights whose config says use_pickle
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        names = src.namelist()
        assert any(n.endswith("data/sample_inputs/model.pt") for n in names), names
        for name in names:
            data = src.read(name)
            if name.endswith("data/sample_inputs/model.pt") or name.endswith("data/weights/weight_0"):
                data = evil_blob.getvalue()
            elif name.endswith("model_weights_config.json"):
                data = data.replace(b'"use_pickle": false', b'"use_pickle": true', 1)
            dst.writestr(name, data)
    res = run_cli("convert", evil, "-o", tmp_path / "out.onnx", "--input", "x:2,4")
    assert_clean_error(res, 2, "refused to unpickle", "--trust-model")
    assert not sentinel.exists(), "the pickle's payload ran"
    assert not (tmp_path / "out.onnx").exists()


def test_output_equal_to_input_is_refused(tmp_path, run_cli, tiny_onnx):
    before = tiny_onnx.read_bytes()
    res = run_cli("simplify", tiny_onnx, "-o", tiny_onnx)
    assert_clean_error(res, 2, "same file as the input")
    assert tiny_onnx.read_bytes() == before


def test_output_equal_to_python_source_is_refused(tmp_path, run_cli, write_py):
    py = write_py("m.py", "import torch\nnet = torch.nn.Linear(2, 2)\n")
    before = py.read_text()
    res = run_cli("convert", f"{py}:net", "-o", py, "--input", "x:1,2")
    assert_clean_error(res, 2, "same file as the input")
    assert py.read_text() == before


def test_output_directory_missing(tmp_path, run_cli, tiny_onnx):
    res = run_cli("simplify", tiny_onnx, "-o", tmp_path / "no" / "such" / "dir" / "out.onnx")
    assert_clean_error(res, 2, "does not exist", "mkdir -p")


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs a read-only folder (/sys on Linux)")
def test_output_directory_not_writable(tmp_path, run_cli, tiny_onnx):
    res = run_cli("simplify", tiny_onnx, "-o", "/sys/kernel/out.onnx")
    assert_clean_error(res, 2, "not writable")


def test_external_data_outside_the_model_folder_is_refused(tmp_path, run_cli):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(4, dtype=np.float32).tobytes())
    folder = tmp_path / "models"
    folder.mkdir()
    tensor = numpy_helper.from_array(np.zeros(4, np.float32), "w")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../secret.bin"), ("offset", "0"), ("length", "16")):
        entry = tensor.external_data.add()
        entry.key, entry.value = k, v
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [tensor],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = folder / "escape.onnx"
    path.write_bytes(model.SerializeToString())
    res = run_cli("inspect", path)
    assert res.code == 2 and "Traceback" not in res.err, res.err
    assert "escape.onnx" in res.err
    res = run_cli("simplify", path, "-o", folder / "out.onnx")
    assert res.code == 2
    assert not (folder / "out.onnx").exists()


def test_unknown_report_suffix(tmp_path, run_cli, tiny_onnx):
    res = run_cli("simplify", tiny_onnx, "-o", tmp_path / "o.onnx", "--report", tmp_path / "r.pdf")
    assert_clean_error(res, 2, "unknown report format")
    assert not (tmp_path / "o.onnx").exists()


def test_debug_shows_the_traceback(tmp_path, run_cli):
    res = run_cli("--debug", "convert", tmp_path / "nope.py:net", "-o", tmp_path / "out.onnx")
    assert res.code == 2 and "Traceback" in res.err


def test_click_usage_errors_exit_2(run_cli):
    assert run_cli("convert").code == 2
    assert run_cli("no-such-command").code == 2
    assert run_cli("convert", "x.py:y", "-o", "o.onnx", "--provider", "gpu").code == 2


def test_save_inputs_and_outputs_to_one_file_is_refused(tmp_path, run_cli, tiny_onnx):
    fx = tmp_path / "fx.npz"
    res = run_cli("validate", tiny_onnx, tiny_onnx, "--save-inputs", fx, "--save-outputs", fx)
    assert_clean_error(res, 2, "both name")
    assert not fx.exists()
