"""A third-party converter plugin, installed for real: ``pip install`` of tests/plugins/toyfw into a
temporary folder put on the PYTHONPATH of subprocesses (the suite's venv is never modified). Through
the CLI, the API and the gate, its framework is detected, chosen with --framework, converted, validated
and checked like a built-in one.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

PLUGIN_SRC = Path(__file__).resolve().parent.parent / "plugins" / "toyfw"

TANH_MODEL = {
    "inputs": [{"name": "x", "dims": ["batch", 4]}],
    "weights": {"w": [[0.1, -0.2, 0.3], [0.4, 0.5, -0.6], [0.7, -0.8, 0.9], [-1.0, 1.1, 0.2]], "b": [0.1, 0.2, -0.3]},
    "program": [["matmul", "x", "w", "h"], ["add", "h", "b", "z"], ["tanh", "z", "y"]],
    "outputs": ["y"],
}


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    """The plugin installed with pip into a folder of its own (no build isolation: no download)."""
    work = tmp_path_factory.mktemp("toyfw")
    src, target = work / "src", work / "site"
    shutil.copytree(PLUGIN_SRC, src)  # pip builds in the source tree: keep tests/ clean
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(src),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    assert (target / "onnxbridge_toyfw-0.1.0.dist-info" / "entry_points.txt").is_file()
    return target


def _env(plugin: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(plugin), os.environ.get("PYTHONPATH")]))}


def _cli(plugin: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "onnxbridge", *map(str, args)],
        cwd=cwd,
        env=_env(plugin),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _toy_module(plugin: Path):
    """The plugin's own module (its numpy evaluator is the source of truth), without touching sys.path."""
    spec = importlib.util.spec_from_file_location("toyfw_under_test", plugin / "onnxbridge_toyfw" / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, model: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model))
    return path


def _ort_vs_numpy(plugin: Path, onnx_file: Path, model_file: Path, batch: int) -> float:
    import onnxruntime as ort

    x = np.random.default_rng(batch).standard_normal((batch, 4)).astype(np.float32)
    got = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    want = _toy_module(plugin).ToyModel.read(model_file).evaluate({"x": x})[0]
    assert got.shape == want.shape == (batch, 3)
    return float(np.abs(got - want).max())


def test_plugin_is_listed_with_its_forms_and_origin(plugin, tmp_path):
    res = _cli(plugin, tmp_path, "frameworks", "--json")
    assert res.returncode == 0, res.stderr
    rows = {f["name"]: f for f in json.loads(res.stdout)["frameworks"]}
    toy = rows["toyfw"]
    assert toy["origin"] == "onnxbridge-toyfw 0.1.0" and toy["routes"] == ["toyfw/helper"]
    assert toy["suffixes"] == [".toyfw"] and toy["dir_markers"] == ["toyfw.json"]
    assert toy["packages"] == {"onnxbridge-toyfw": "0.1.0"}
    assert rows["pytorch"]["origin"] == "built-in"


@pytest.mark.route("toyfw/helper")
def test_plugin_converts_and_validates_through_the_cli(plugin, tmp_path):
    model = _write(tmp_path / "model.toyfw", TANH_MODEL)
    res = _cli(plugin, tmp_path, "convert", "model.toyfw", "-o", "model.onnx", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["framework"] == "toyfw" and report["route"] == "toyfw/helper" and report["passed"]
    assert {c["label"] for c in report["validation"]["cases"]} >= {"batch=1", "batch=5"}
    # batch 7 is a size the validator did not use; numpy (the plugin's own evaluator) is the truth
    assert _ort_vs_numpy(plugin, tmp_path / "model.onnx", model, 7) < 1e-5


def test_plugin_forms_through_the_api(plugin, tmp_path):
    """A folder with the plugin's marker, --framework on a file it cannot be told from, and a Python
    object whose class comes from the plugin's module."""
    _write(tmp_path / "folder" / "toyfw.json", TANH_MODEL)
    _write(tmp_path / "model.json", TANH_MODEL)
    (tmp_path / "models.py").write_text(
        textwrap.dedent(f"""
        from onnxbridge_toyfw import ToyModel
        def net():
            m = {TANH_MODEL!r}
            return ToyModel(m["inputs"], m["weights"], m["program"], m["outputs"])
    """)
    )
    script = textwrap.dedent("""
        import json, onnxbridge
        out = {}
        for name, source, framework in (("folder", "folder", None), ("json", "model.json", "toyfw"),
                                        ("object", "models.py:net", None)):
            r = onnxbridge.convert(source, name + ".onnx", framework=framework)
            out[name] = [r.framework, r.passed, r.conversion.route]
        print(json.dumps(out))
    """)
    res = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=_env(plugin), capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    results = json.loads(res.stdout.strip().splitlines()[-1])
    assert results == {k: ["toyfw", True, "toyfw/helper"] for k in ("folder", "json", "object")}
    for name in results:
        assert _ort_vs_numpy(plugin, tmp_path / f"{name}.onnx", tmp_path / "model.json", 3) < 1e-5


def test_a_wrong_plugin_export_fails_parity(plugin, tmp_path):
    """The plugin exports gelu with the tanh approximation; numpy computes erf: exit 1, not a pass."""
    wrong = {**TANH_MODEL, "program": [["matmul", "x", "w", "h"], ["mul", "h", "b", "z"], ["gelu", "z", "y"]]}
    _write(tmp_path / "gelu.toyfw", {**wrong, "weights": {**TANH_MODEL["weights"], "b": [1.5, 2.0, 2.5]}})
    res = _cli(plugin, tmp_path, "convert", "gelu.toyfw", "-o", "gelu.onnx", "--json")
    assert res.returncode == 1, res.stderr
    report = json.loads(res.stdout)
    assert report["framework"] == "toyfw" and report["passed"] is False


def test_plugin_errors_are_bad_input(plugin, tmp_path):
    (tmp_path / "broken.toyfw").write_text("{not json")
    res = _cli(plugin, tmp_path, "convert", "broken.toyfw", "-o", "out.onnx")
    assert res.returncode == 2 and "broken.toyfw is not a toyfw model" in res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "out.onnx").exists()
    res = _cli(plugin, tmp_path, "convert", "broken.toyfw", "-o", "out.onnx", "--framework", "cobol")
    assert res.returncode == 2 and "toyfw" in res.stderr  # the known names include the plugin's


def test_without_the_plugin_its_forms_are_unknown(tmp_path, run_cli):
    _write(tmp_path / "model.toyfw", TANH_MODEL)
    res = run_cli("convert", tmp_path / "model.toyfw", "-o", tmp_path / "out.onnx")
    assert res.code == 2 and "cannot tell the framework" in res.err
    res = run_cli("convert", tmp_path / "model.toyfw", "-o", tmp_path / "out.onnx", "--framework", "toyfw")
    assert res.code == 2 and "not a registered framework" in res.err


def test_plugin_models_in_the_gate(plugin, tmp_path):
    model = _write(tmp_path / "model.toyfw", TANH_MODEL)
    (tmp_path / "onnxbridge.toml").write_text(
        textwrap.dedent("""
        [[models]]
        name = "toy"
        source = "model.toyfw"
        onnx = "artifacts/toy.onnx"
    """)
    )
    res = _cli(plugin, tmp_path, "check", "--update", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    (entry,) = json.loads(res.stdout)["models"]
    assert entry["status"] == "updated" and entry["framework"] == "toyfw"
    cache = json.loads((tmp_path / ".onnxbridge" / "cache.json").read_text())
    assert cache["models"]["toy"]["fingerprint"]["export_versions"]["onnxbridge-toyfw"] == "0.1.0"
    assert _ort_vs_numpy(plugin, tmp_path / "artifacts" / "toy.onnx", model, 6) < 1e-5

    changed = {**TANH_MODEL, "weights": {**TANH_MODEL["weights"], "b": [0.1, 0.2, 0.3]}}
    _write(model, changed)  # the source moved on; the committed ONNX file did not
    res = _cli(plugin, tmp_path, "check", "--json")
    assert res.returncode == 1, res.stdout + res.stderr
    (entry,) = json.loads(res.stdout)["models"]
    assert entry["status"] == "failed" and entry["framework"] == "toyfw" and "source changed" in entry["reasons"][0]
