"""``onnxbridge upgrade``: legacy ONNX files to today's opsets (and back down), repaired, simplified and
replayed against the original model and the expected outputs they ship with."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import onnxbridge
from tests.conftest import files_in

LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
LIGHT_MODELS = (
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
)


def zoo_folder(name: str, dst: Path) -> Path:
    """One of the onnx wheel's light models in the model zoo layout. The wheel ships the expected output
    (``light_NAME_output_0.pb``); its input is the one onnx's backend runner makes (arange / n)."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(LIGHT / f"light_{name}.onnx", dst / "model.onnx")
    model = onnx.load(str(dst / "model.onnx"))
    init = {i.name for i in model.graph.initializer}
    (x,) = [i for i in model.graph.input if i.name not in init]
    shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in x.type.tensor_type.shape.dim)
    n = int(np.prod(shape))
    data = dst / "test_data_set_0"
    data.mkdir()
    arr = (np.arange(n).reshape(shape) / n).astype(np.float32)
    (data / "input_0.pb").write_bytes(numpy_helper.from_array(arr, x.name).SerializeToString())
    shutil.copy(LIGHT / f"light_{name}_output_0.pb", data / "output_0.pb")
    return dst / "model.onnx"


def legacy_model(path: Path) -> Path:
    """An IR 3 / opset 9 file as old exporters wrote them: Upsample (gone since opset 10), weights listed
    as graph inputs, an output without a shape, random weights."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")
    scales = numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales")
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Upsample", ["r", "scales"], ["y"], mode="nearest"),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])] + [
        helper.make_tensor_value_info(t.name, TensorProto.FLOAT, list(t.dims)) for t in (w, b, scales)
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    model = helper.make_model(
        helper.make_graph(nodes, "legacy", inputs, outputs, [w, b, scales]),
        opset_imports=[helper.make_opsetid("", 9)],
        producer_name="caffe2",
    )
    model.ir_version = 3
    del model.graph.output[0].type.tensor_type.shape.dim[:]
    model.graph.output[0].type.tensor_type.ClearField("shape")
    path.write_bytes(model.SerializeToString())
    return path


def ort_run(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)


@pytest.mark.parametrize("opset", [17, 21])
@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_models_upgrade_simplify_and_replay_their_expected_outputs(name, opset, tmp_path):
    model = zoo_folder(name, tmp_path / name)
    out = tmp_path / "new.onnx"
    report = onnxbridge.upgrade(model, out, opset=opset)
    u = report.upgrade
    assert report.passed is True
    assert (u.opset_before, u.opset_after, u.ir_before, u.ir_after) == (9, opset, 3, 8 if opset == 17 else 10)
    assert u.golden is not None and u.golden.passed and [c.label for c in u.golden.cases] == ["test_data_set_0"]
    assert report.validation.passed and len(report.validation.cases) == 3
    assert report.simplify.applied and report.simplify.nodes_after < u.nodes_after
    assert u.initializer_inputs_removed > 0 and "Conv" in u.op_versions
    # the file stays light: generated weights are not folded into the file
    assert out.stat().st_size < 8_000_000  # vgg19's weights alone would be 575 MB
    # ONNX Runtime on the new file against the shipped expected output, outside onnxbridge's validator
    new = onnx.load(str(out))
    assert new.opset_import[0].version == opset and new.ir_version == u.ir_after
    data = model.parent / "test_data_set_0"
    x, want = (numpy_helper.to_array(onnx.load_tensor(str(data / f))) for f in ("input_0.pb", "output_0.pb"))
    np.testing.assert_allclose(ort_run(out, {new.graph.input[0].name: x})[0], want, rtol=1e-3, atol=1e-7)


def test_a_legacy_file_is_repaired_and_its_replaced_ops_reported(tmp_path):
    old = legacy_model(tmp_path / "old.onnx")
    report = onnxbridge.upgrade(old, tmp_path / "new.onnx", opset=17, simplify=False)
    u = report.upgrade
    assert report.passed and u.ops_removed == {"Upsample": 1} and u.ops_added == {"Constant": 1, "Resize": 1}
    assert u.replaced == "Upsample x1 -> Constant x1, Resize x1"
    assert u.initializer_inputs_removed == 3 and u.shapes_added == 1 and u.ir_after == 8
    assert report.validation.worst_abs == 0.0 or report.validation.worst_abs < 1e-5
    new = onnx.load(str(tmp_path / "new.onnx"))
    assert [i.name for i in new.graph.input] == ["x"]
    assert [d.dim_value for d in new.graph.output[0].type.tensor_type.shape.dim] == [1, 4, 16, 16]
    feeds = {"x": np.random.default_rng(5).standard_normal((1, 3, 8, 8)).astype(np.float32)}
    got, want = ort_run(tmp_path / "new.onnx", feeds)[0], ort_run(old, feeds)[0]
    assert got.shape == (1, 4, 16, 16) and np.abs(want).max() > 0.1
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    # and back down, parity-checked against the opset-17 file
    down = onnxbridge.upgrade(tmp_path / "new.onnx", tmp_path / "down.onnx", opset=14)
    assert down.passed and (down.upgrade.opset_before, down.upgrade.opset_after) == (17, 14)
    assert down.upgrade.ir_after == 7  # the lowest IR that opset 14 needs, so older runtimes load it
    np.testing.assert_allclose(ort_run(tmp_path / "down.onnx", feeds)[0], want, rtol=1e-5, atol=1e-6)


def test_cli_reports_what_changed_and_fails_on_wrong_expected_outputs(tmp_path, run_cli):
    model = zoo_folder("squeezenet", tmp_path / "sq")
    res = run_cli(
        "upgrade",
        model,
        "-o",
        tmp_path / "new.onnx",
        "--opset",
        "17",
        "--json",
        "--report",
        tmp_path / "r.json",
        "--report",
        tmp_path / "r.md",
        "--report",
        tmp_path / "r.html",
    )
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["command"] == "upgrade" and data["passed"] is True
    up = data["upgrade"]
    assert (up["opset_before"], up["opset_after"], up["ir_before"], up["ir_after"]) == (9, 17, 3, 8)
    assert up["golden"]["passed"] and up["golden_source"].endswith("sq")
    assert up["replaced"] == "nothing -> Constant x1, Flatten x1, Reshape x1, Shape x1"
    assert json.loads((tmp_path / "r.json").read_text())["upgrade"]["nodes_before"] == 105
    for page in ("r.md", "r.html"):
        text = (tmp_path / page).read_text()
        assert "opset 9 → 17, IR 3 → 8, nodes 105 → 109" in text and "expected outputs" in text

    # expected outputs that the model does not give: parity fails (exit 1), not a silent pass
    pb = model.parent / "test_data_set_0" / "output_0.pb"
    t = onnx.TensorProto()
    t.ParseFromString(pb.read_bytes())
    pb.write_bytes(numpy_helper.from_array(numpy_helper.to_array(t) * 1.5, t.name).SerializeToString())
    res = run_cli("upgrade", model, "-o", tmp_path / "again.onnx", "--opset", "17")
    assert res.code == 1 and "test_data_set_0" in res.out


def test_bad_inputs_exit_2_and_write_nothing(tmp_path, run_cli):
    model = zoo_folder("squeezenet", tmp_path / "sq")
    (model.parent / "test_data_set_0" / "input_0.pb").write_bytes(b"\x08garbage")
    before = files_in(tmp_path)
    res = run_cli("upgrade", model, "-o", tmp_path / "new.onnx", "--opset", "17")
    assert res.code == 2 and "input_0.pb is not a serialised ONNX tensor" in res.err
    for args in (["--opset", "0"], ["--opset", "17", "--test-data", tmp_path / "nothing"]):
        res = run_cli("upgrade", model, "-o", tmp_path / "new.onnx", *args)
        assert res.code == 2, res.err
    res = run_cli("upgrade", model, "-o", model, "--opset", "17")
    assert res.code == 2
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    res = run_cli("upgrade", tmp_path / "bad.onnx", "-o", tmp_path / "new.onnx", "--opset", "17")
    assert res.code == 2 and "Traceback" not in res.err
    assert files_in(tmp_path) == before | {"bad.onnx"}


def test_an_impossible_conversion_exits_3(tmp_path, run_cli):
    onnxbridge.upgrade(legacy_model(tmp_path / "old.onnx"), tmp_path / "mid.onnx", opset=17, validate=False)
    res = run_cli("upgrade", tmp_path / "mid.onnx", "-o", tmp_path / "new.onnx", "--opset", "11")
    assert res.code == 3 and "version converter" in res.err and "Relu" in res.err
    assert not (tmp_path / "new.onnx").exists()
