"""Fixtures for validator tests: tiny ONNX files and one small PyTorch model converted once."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from . import onnx_models

TORCH_NETS = '''
import torch


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))

    def forward(self, x):
        return self.net(x)


class Baked(torch.nn.Module):
    """Declares a dynamic batch, but turns it into a Python int: tracing bakes the export size in."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x):
        n = int(x.shape[0])
        return self.lin(x) + torch.zeros(n, 1)


def mlp():
    return Mlp().eval(), (torch.randn(2, 16),)


def baked():
    return Baked().eval(), (torch.randn(2, 4),)
'''


@pytest.fixture
def onnx_file(tmp_path):
    """Save one of the onnx_models builders' products: onnx_file("a.onnx", model) -> path."""

    def make(name: str, model) -> Path:
        return onnx_models.save(model, tmp_path / name)

    return make


@pytest.fixture(scope="module")
def torch_nets(tmp_path_factory) -> Path:
    """A models file with a small MLP and a model that bakes its batch size in."""
    pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("nets")
    path = folder / "nets.py"
    path.write_text(textwrap.dedent(TORCH_NETS))
    return path


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def flat(text: str) -> str:
    """Terminal output with rich's line wrapping undone: table borders dropped, any whitespace run
    -> one space (a cell wrapped onto the next table row reads as one line again)."""
    return " ".join(text.replace("│", " ").replace("┃", " ").split())
