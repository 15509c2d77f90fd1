"""kill -9 at random moments of convert, simplify and check --update: nothing torn, nothing left.

Each run is a child of a fork server that imported torch, onnx and onnxruntime once
(tests/forkserver.py), so a run costs its own work only. After each kill the outputs are read
the way a user's next command reads them: either a whole set loads and agrees with itself (the
ONNX file with its external data computes one of the two models; the gate's fixtures replay on its
ONNX file and name its sha256), or the reader refuses it as incomplete, and the next run's
recovery makes it whole. The last complete run leaves no temp file of ours anywhere.
"""

from __future__ import annotations

import hashlib
import json
import random
import textwrap
from pathlib import Path

import numpy as np
import pytest

from onnxbridge.errors import InputError
from onnxbridge.publish import PREFIX, recover

pytestmark = pytest.mark.slow

KILLS = {"convert": 5, "simplify": 11, "update": 4}  # 20 kills

NETS = """
import torch
from torch import nn


def net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(16, 64), nn.Tanh(), nn.Linear(64, 8)).eval()


def net_a():
    return net(0)


def net_b():
    return net(1)
"""

MANIFEST = """
[[models]]
name = "net"
source = "models.py:net"
onnx = "artifacts/net.onnx"
inputs = ["x:batch,16"]
provider = "cpu"
external_data = true
"""


def _outputs(model_path: Path, x: np.ndarray) -> np.ndarray:
    from onnxbridge.runtime.sessions import OrtRunner

    return OrtRunner(model_path, "cpu").run({"x": x})[0]


def _read_or_recover(path: Path, read):
    """What the next command sees: the set, or an 'incomplete' refusal, then the recovered set."""
    try:
        return read()
    except InputError as e:
        assert "incomplete" in e.message, e.message
        assert recover(path.parent)
        return read()


def _ours(root: Path) -> list[Path]:
    return [p for p in root.rglob(f"{PREFIX}*")]


def _torch_outputs(nets: Path, x: np.ndarray) -> list[np.ndarray]:
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("kill_nets", nets)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with torch.no_grad():
        return [module.net(s)(torch.from_numpy(x)).numpy() for s in (0, 1)]


def test_kill9_at_random_points_leaves_old_or_new(cli_server, tmp_path):
    server = cli_server
    rng = random.Random(14)
    nets = tmp_path / "nets.py"
    nets.write_text(textwrap.dedent(NETS))
    out = tmp_path / "out"
    out.mkdir()
    x = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    expected = _torch_outputs(nets, x)

    def one_of_the_models(path: Path) -> None:
        from onnxbridge.onnxio import load_onnx

        def read():
            load_onnx(path)
            return _outputs(path, x)

        got = _read_or_recover(path, read)
        assert any(np.allclose(got, e, atol=1e-5) for e in expected), f"{path}: a torn model"

    # convert: an in-memory product saved with external data; check --update (external_data = true): the
    # exporter's on-disk product published with its fixtures
    convert = [
        [
            "convert",
            f"{nets}:net_{k}",
            "-o",
            out / "m.onnx",
            "--input",
            "x:batch,16",
            "--external-data",
            "--no-validate",
            "--route",
            "torchscript",
        ]
        for k in "ab"
    ]
    simplify = [["simplify", out / "m.onnx", "-o", out / "s.onnx", "--no-validate"]]
    times = {"convert": server.complete(convert[0], tmp_path), "simplify": server.complete(simplify[0], tmp_path)}
    assert (out / "m.onnx.data").exists(), "the stand-in must take the external-data path"

    project = tmp_path / "proj"
    project.mkdir()
    (project / "onnxbridge.toml").write_text(textwrap.dedent(MANIFEST))
    models = [textwrap.dedent(NETS).replace("def net(seed=0)", f"def net(seed={s})") for s in (0, 1)]
    (project / "models.py").write_text(models[0])
    update = ["check", "--update"]
    times["update"] = server.complete(update, project)

    for i in range(max(KILLS.values())):
        if i < KILLS["convert"]:
            server.kill_during(convert[i % 2], tmp_path, rng.uniform(0, 1.1 * times["convert"]))
            one_of_the_models(out / "m.onnx")
        if i < KILLS["simplify"]:
            server.kill_during(simplify[0], tmp_path, rng.uniform(0, 1.1 * times["simplify"]))
            one_of_the_models(out / "s.onnx")
        if i < KILLS["update"]:
            (project / "models.py").write_text(models[(i + 1) % 2])
            server.kill_during(update, project, rng.uniform(0, 1.1 * times["update"]))
            _gate_pair_is_whole(project, expected, x)

    server.complete(convert[1], tmp_path)  # the next runs: each clears what the killed ones left
    server.complete(update, project)
    assert _ours(tmp_path) == []
    one_of_the_models(out / "s.onnx")
    _gate_pair_is_whole(project, expected, x)


def _gate_pair_is_whole(project: Path, expected: list[np.ndarray], x: np.ndarray) -> None:
    from onnxbridge.parity.fixtures import read_fixtures

    onnx_path, fixtures_path = project / "artifacts" / "net.onnx", project / "artifacts" / "net.npz"
    cache = project / ".onnxbridge" / "cache.json"
    if cache.exists():
        json.loads(cache.read_text())  # never half-written
    golden = _read_or_recover(fixtures_path, lambda: read_fixtures(fixtures_path))
    assert golden.meta["onnx_sha256"] == hashlib.sha256(onnx_path.read_bytes()).hexdigest(), "ONNX and fixtures torn"
    for label, feeds in golden.inputs:
        want = dict(golden.outputs)[label]
        got = _outputs(onnx_path, feeds["x"])
        np.testing.assert_allclose(got, next(iter(want.values())), atol=1e-5)
    assert any(np.allclose(_outputs(onnx_path, x), e, atol=1e-5) for e in expected)
