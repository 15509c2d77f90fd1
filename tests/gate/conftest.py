"""A tiny project with two declared PyTorch models, exported once per test session and copied per test."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

MODELS_PY = """\
import torch
from torch import nn

from layers import Scale


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.Tanh(), Scale(2.0))


def other():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(3, 2), nn.ReLU())
"""

LAYERS_PY = """\
import torch


class Scale(torch.nn.Module):
    def __init__(self, k):
        super().__init__()
        self.k = k

    def forward(self, x):
        return x * self.k
"""

MANIFEST = """\
# two tiny models
[[models]]
name = "net"
source = "models.py:net"
onnx = "artifacts/net.onnx"
inputs = ["x:batch,4"]

[[models]]
name = "other"
source = "models.py:other"
onnx = "artifacts/other.onnx"
inputs = ["x:batch,3"]
provider = "cpu"
"""


def write_project(root: Path, manifest: str = MANIFEST) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "models.py").write_text(MODELS_PY)
    (root / "layers.py").write_text(LAYERS_PY)
    (root / "onnxbridge.toml").write_text(textwrap.dedent(manifest))
    return root


@pytest.fixture(scope="session")
def exported_project(tmp_path_factory) -> Path:
    """The project after ``onnxbridge check --update``: ONNX files, fixtures and a cache of passes."""
    from onnxbridge.gate import check

    root = write_project(tmp_path_factory.mktemp("gate") / "proj")
    report = check(root / "onnxbridge.toml", update=True)
    assert [r.status for r in report.results] == ["updated", "updated"], [r.message for r in report.results]
    return root


@pytest.fixture
def project(exported_project, tmp_path) -> Path:
    """A private copy of the exported project (mtimes kept, so the cache still holds)."""
    dst = tmp_path / "proj"
    shutil.copytree(exported_project, dst)
    return dst
