"""Manifest keys come from the option objects: an entry can name routes, the simplifier, ONNX Runtime
optimisation, the task and per-output tolerances, and ``onnxbridge check`` honours them end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from onnxbridge.gate.manifest import _KEYS, load_manifest
from onnxbridge.gate.manifest_keys import OPTION_KEYS
from tests.gate.conftest import write_project

ENTRY = """\
[[models]]
name = "net"
source = "models.py:net"
onnx = "artifacts/net.onnx"
inputs = ["x:batch,4"]
{extra}
"""
OPTIONS = """\
routes = ["torchscript"]
simplifier = "onnxslim"
optimize = "cpu"
tolerances = {output = [1e-3, 1e-2]}
"""


def _check(run_cli, root, *args):
    r = run_cli("check", "--config", root / "onnxbridge.toml", "--json", *args)
    return r, json.loads(r.out) if r.out.strip().startswith("{") else None


def test_every_option_key_is_a_field_of_its_option_object():
    import dataclasses

    for key, (owner, field) in OPTION_KEYS.items():
        assert field in {f.name for f in dataclasses.fields(owner)} and _KEYS[key].owner is owner
    assert {"routes", "simplifier", "optimize", "task", "tolerances", "fuse_transformer"} <= set(_KEYS)


def test_an_entry_with_routes_simplifier_optimize_and_per_output_tolerances_checks_end_to_end(run_cli, tmp_path):
    torch = pytest.importorskip("torch")
    root = write_project(tmp_path / "p", ENTRY.format(extra=OPTIONS))
    entry = load_manifest(root / "onnxbridge.toml").models[0]
    options = entry.convert_options()
    assert options.export.routes == ("torchscript",) and options.simplifier == "onnxslim"
    assert options.optimize.target == "cpu" and entry.tolerances == ("output=0.001,0.01",)
    r, d = _check(run_cli, root, "--update")
    assert r.code == 0, r.out + r.err
    (model,) = d["models"]
    assert model["status"] == "updated" and "(torchscript)" in model["message"]
    tol = model["validations"]["update"]["tolerances"]["output"]
    assert (tol["atol"], tol["rtol"], tol["from"]) == (0.001, 0.01, "--tol")
    r, d = _check(run_cli, root, "--force")  # the replay judges with the same per-output tolerances
    assert r.code == 0 and d["models"][0]["status"] == "passed", r.out + r.err
    assert d["models"][0]["validations"]["replay"]["tolerances"]["output"]["from"] == "--tol"
    # the committed file, straight on ONNX Runtime at batch 5 (the gate used others), against the source
    import sys

    import onnxruntime as ort

    sys.path.insert(0, str(root))
    try:
        import models

        net = models.net()
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("models", None)
        sys.modules.pop("layers", None)
    x = np.random.default_rng(5).standard_normal((5, 4)).astype(np.float32)
    got = ort.InferenceSession(str(root / "artifacts/net.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"x": x}
    )[0]
    np.testing.assert_allclose(got, net(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


def test_a_per_output_tolerance_tighter_than_the_numbers_fails_the_model(run_cli, tmp_path):
    """The same right model, judged at atol = rtol = 0 for its output: the tolerance is really used."""
    pytest.importorskip("torch")
    root = write_project(tmp_path / "p", ENTRY.format(extra='tolerances = ["output=0,0"]'))
    r, d = _check(run_cli, root, "--update")
    assert r.code == 1 and d["models"][0]["status"] == "failed", r.out + r.err
    assert not (root / "artifacts/net.onnx").exists()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ('simplifier = "nope"', "unknown --simplifier 'nope'"),
        ('optimize = "tpu"', "unknown --optimize target 'tpu'"),
        ('tolerances = ["output"]', "malformed tolerances 'output'"),
        ('routes = "torchscript"', "routes must be a list of route names"),
        ("task = 3", "task must be a string"),
    ],
)
def test_a_bad_option_key_is_exit_2_at_its_line(run_cli, tmp_path, extra, words):
    root = write_project(tmp_path / "p", ENTRY.format(extra=extra))
    r = run_cli("check", "--config", root / "onnxbridge.toml")
    assert r.code == 2 and "onnxbridge.toml:6:" in r.err and words in r.err, r.out + r.err


def test_a_task_reaches_the_exporter(run_cli, tmp_path):
    """A PyTorch source takes no task: the entry's task reaches the export, which refuses it for that model."""
    pytest.importorskip("torch")
    root = write_project(tmp_path / "p", ENTRY.format(extra='task = "text-classification"'))
    assert load_manifest(root / "onnxbridge.toml").models[0].export_options().task == "text-classification"
    r, d = _check(run_cli, root, "--update")
    assert r.code == 2 and d["models"][0]["status"] == "error", r.out + r.err
    assert "--task does not apply to pytorch sources" in d["models"][0]["message"]
