"""Shared fixtures: a CLI runner that returns (exit code, stdout, stderr), and small model files."""

from __future__ import annotations

import os
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# every test probes torch.export itself, as a first convert does; tests/converters/test_probe_cache.py turns the
# probe cache on, in a folder of its own
os.environ["ONNXBRIDGE_NO_CACHE"] = "1"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys):
    """Run ``onnxbridge ARGS`` in-process through the real entry point; returns CliResult."""
    from onnxbridge.cli import main

    def run(*args: str) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def write_py(tmp_path):
    """Write a Python source file into tmp_path and return its path."""

    def write(name: str, body: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(body))
        return path

    return write


def files_in(folder: Path) -> set[str]:
    """Every file name in a folder, hidden temp files included (to prove nothing partial is left)."""
    return {p.name for p in folder.iterdir()}


@pytest.fixture
def tiny_onnx():
    """A small MLP as an ONNX ModelProto (weights over onnx's 1 KiB external-data threshold)."""
    from tests.parity import onnx_models

    return onnx_models.mlp()


@pytest.fixture(scope="session")
def cli_server():
    """onnxbridge commands as killable child processes that skip the imports (tests/forkserver.py)."""
    pytest.importorskip("torch")
    from tests.forkserver import CliServer

    return CliServer()


def pytest_collection_modifyitems(config, items):
    """Tests marked ``first`` (minutes long, on one worker) start first, so that with ``-n 2`` their
    worker begins with them while the other takes the rest, instead of finishing last on its own."""
    first = [item for item in items if item.get_closest_marker("first")]
    if first:
        chosen = set(map(id, first))
        items[:] = first + [item for item in items if id(item) not in chosen]
