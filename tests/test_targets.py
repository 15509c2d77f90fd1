"""``inspect --target``: can a deployment target load a model (IR version, opset, domains, ops), and the
opset conversion that fixes it, offered only when it was tried and kept parity."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxbridge.targets import ORT_RELEASES, parse_targets
from tests.test_report_schema import check
from tests.transforms.test_upgrade import zoo_folder


def _gelu_model(path, opset: int = 20, ir: int = 9):
    """Gelu exists from opset 20 on: no conversion can take it below."""
    g = helper.make_graph(
        [helper.make_node("Gelu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir
    onnx.save(model, str(path))
    return path


def _unique_model(path):
    g = helper.make_graph(
        [helper.make_node("Unique", ["x"], ["y"])],
        "u",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])],
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_too_new_model_gets_a_checked_downgrade_that_works(tmp_path, run_cli):
    model = zoo_folder("squeezenet", tmp_path / "sq")
    new = tmp_path / "sq21.onnx"
    assert run_cli("upgrade", model, "-o", new, "--opset", "21", "--json").code == 0
    res = run_cli("inspect", new, "--target", "ort==1.17,ort-web", "--target", "tensorrt10", "--json")
    assert res.code == 1, res.err
    data = check("inspect.schema.json", json.loads(res.out))
    by = {t["target"]: t for t in data["targets"]}
    assert set(by) == {"ort==1.17", "ort-web==1.20", "tensorrt10"}
    ort17 = by["ort==1.17"]
    assert not ort17["ok"] and ort17["problems"] == [
        "IR version 10 > 9, the newest it loads",
        "opset 21 > 20, the newest it implements",
    ]
    assert ort17["fix_opset"] == 20 and ort17["fix_parity"] is True and "--opset 20" in ort17["fix_command"]
    assert by["ort-web==1.20"]["ok"] and "compatibility matrix" in by["ort-web==1.20"]["source"]
    assert by["tensorrt10"]["fix_opset"] == 20

    # the offered command, run: the result fits every target and computes what the original did
    down = tmp_path / "sq20.onnx"
    assert run_cli("upgrade", new, "-o", down, "--opset", "20").code == 0
    res = run_cli("inspect", down, "--target", "ort==1.17,tensorrt10,ort", "--json")
    assert res.code == 0 and all(t["ok"] for t in json.loads(res.out)["targets"])
    x = numpy_helper.to_array(onnx.load_tensor(str(model.parent / "test_data_set_0" / "input_0.pb")))
    x = x + np.random.default_rng(1).random(x.shape, dtype=np.float32)
    run = {p: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (model, down)}
    np.testing.assert_allclose(
        run[down].run(None, {"data_0": x})[0], run[model].run(None, {"data_0": x})[0], rtol=1e-4, atol=1e-6
    )


def test_ops_a_target_lacks_get_no_conversion_offer(tmp_path, run_cli):
    res = run_cli("inspect", _gelu_model(tmp_path / "gelu.onnx"), "--target", "ort==1.14,ort==1.17", "--json")
    assert res.code == 1
    old, new = json.loads(res.out)["targets"]
    assert old["problems"][-1] == "ops: Gelu (not in opset 18)" and old["fix_opset"] is None and not old["fix_command"]
    assert new["ok"]
    res = run_cli("inspect", _unique_model(tmp_path / "u.onnx"), "--target", "tensorrt10,ort", "--json")
    trt, installed = json.loads(res.out)["targets"]
    assert trt["problems"] == ["ops: Unique (not implemented)"] and trt["fix_opset"] is None
    assert installed["ok"] and installed["target"].startswith("ort (")


def test_upgrade_report_matches_its_schema(tmp_path, run_cli):
    model = zoo_folder("squeezenet", tmp_path / "sq")
    res = run_cli("upgrade", model, "-o", tmp_path / "n.onnx", "--opset", "17", "--json")
    assert res.code == 0
    check("report.schema.json", json.loads(res.out))


@pytest.mark.parametrize("bad", ["ort==1.99", "cuda", "tensorrt7"])
def test_unknown_targets_are_usage_errors(bad, tmp_path, run_cli):
    res = run_cli("inspect", _gelu_model(tmp_path / "g.onnx"), "--target", bad)
    assert res.code == 2 and "--target" in res.err


def test_the_table_is_ordered_and_monotonic():
    rows = [ORT_RELEASES[v] for v in sorted(ORT_RELEASES, key=lambda v: tuple(map(int, v.split("."))))]
    assert rows == sorted(rows)
    assert [t.name for t in parse_targets("ORT==1.17.3, tensorrt==10.2")] == ["ort==1.17", "tensorrt10"]
