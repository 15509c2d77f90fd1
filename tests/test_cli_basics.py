"""The CLI's shape: fast --help without frameworks, every subcommand's help, the demo, inspect, simplify."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxbridge.cli import COMMANDS

HEAVY = ("torch", "tensorflow", "keras", "onnxruntime", "onnx", "jax")


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import onnxbridge",
        "from onnxbridge.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
    ],
    ids=["import", "--help"],
)
def test_help_and_import_load_no_framework(code):
    loaded = _modules_after(code)
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]


def test_help_lists_every_command(run_cli):
    res = run_cli("--help")
    assert res.code == 0
    for name in COMMANDS:
        assert name in res.out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_subcommand_help(run_cli, name):
    res = run_cli(name, "--help")
    assert res.code == 0, res.err
    assert "Usage:" in res.out


def test_version(run_cli):
    import onnxbridge

    res = run_cli("--version")
    assert res.code == 0 and onnxbridge.__version__ in res.out


def test_demo_runs_the_whole_pipeline(tmp_path, run_cli):
    out = tmp_path / "demo"
    res = run_cli("demo", "--out-dir", out)
    assert res.code == 0, res.err
    for name in ("small_cnn", "tiny_text_classifier"):
        assert (out / f"{name}.onnx").is_file()
        data = json.loads((out / f"{name}.report.json").read_text())
        assert data["passed"] is True and data["route"] == "torch.export/dynamo"
        assert data["validation"]["provider_used"] == "CPUExecutionProvider"
        assert len(data["validation"]["cases"]) >= 5
        assert "✓ pass" in (out / f"{name}.report.md").read_text()
    assert "PASS" in res.out


def _foldable_model(path):
    """y = (x + (c1 * c2)) with a constant subgraph onnxsim folds away."""
    c1 = numpy_helper.from_array(np.full((4,), 3.0, np.float32), "c1")
    c2 = numpy_helper.from_array(np.full((4,), 0.5, np.float32), "c2")
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["c1", "c2"], ["c"]),
            helper.make_node("Identity", ["c"], ["c_id"]),
            helper.make_node("Add", ["x", "c_id"], ["y"]),
        ],
        "foldable",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [c1, c2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def test_simplify_folds_constants_and_checks_parity(tmp_path, run_cli):
    src = _foldable_model(tmp_path / "f.onnx")
    out = tmp_path / "f.simple.onnx"
    res = run_cli("simplify", src, "-o", out, "--json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["simplify"]["nodes_before"] == 3 and data["simplify"]["nodes_after"] == 1
    assert data["simplify"]["parity_passed"] is True
    import onnxruntime as ort

    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    (y,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(y, x + 1.5)


def test_inspect(tmp_path, run_cli):
    src = _foldable_model(tmp_path / "f.onnx")
    res = run_cli("inspect", src, "--json")
    assert res.code == 0
    info = json.loads(res.out)
    assert info["opsets"] == {"ai.onnx": 17}
    assert info["inputs"] == [{"name": "x", "dims": ["batch", 4], "dtype": "float32"}]
    assert info["op_histogram"] == {"Mul": 1, "Identity": 1, "Add": 1}
    assert info["parameters"] == 8 and info["nodes"] == 3
    res = run_cli("inspect", src)
    assert res.code == 0 and "op histogram" in res.out


def test_validate_onnx_against_onnx(tmp_path, run_cli):
    src = _foldable_model(tmp_path / "f.onnx")
    out = tmp_path / "f.simple.onnx"
    assert run_cli("simplify", src, "-o", out).code == 0
    res = run_cli("validate", src, out, "--json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["validation"]["passed"] is True
    assert {c["label"] for c in data["validation"]["cases"]} >= {"seed=0", "batch=1", "batch=5"}


def test_api_verbs_stay_functions_after_every_submodule_is_imported():
    """A submodule named like a verb would replace the verb on the package once imported."""
    import importlib
    import pkgutil

    import onnxbridge

    for mod in pkgutil.walk_packages(onnxbridge.__path__, "onnxbridge."):
        if not mod.name.startswith(("onnxbridge.demo.models",)):
            importlib.import_module(mod.name)
    for verb in ("convert", "simplify", "validate", "inspect", "bench", "check"):
        assert callable(getattr(onnxbridge, verb)), verb
