"""A small PyTorch net for localisation tests: blocks, a module called twice, a tuple-returning module,
in-place ops, and (``odd=True``) a module whose exported graph differs from eager."""

from __future__ import annotations

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.act = nn.GELU()

    def forward(self, x):
        return self.act(self.fc(x)) + x  # BLOCK LINE


class ExportsDifferently(nn.Module):
    """Eager returns x; the exported graph computes x * 1.05."""

    def forward(self, x):
        if torch.compiler.is_exporting() or torch.jit.is_tracing():
            return x * 1.05  # ODD LINE
        return x


class Pair(nn.Module):
    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.a = nn.Linear(d, d)
        self.b = nn.Linear(d, d)

    def forward(self, x):
        return self.a(x), torch.tanh(self.b(x))


class Net(nn.Module):
    def __init__(self, d: int = 16, odd: bool = False) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([Block(d) for _ in range(4)])
        self.odd = ExportsDifferently() if odd else nn.Identity()
        self.shared = nn.Linear(d, d)
        self.pair = Pair(d)
        self.head = nn.Linear(d, 4)

    def forward(self, x):
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i == 1:
                x = self.odd(x)
        x = self.shared(x)
        x.relu_()  # in place, on a module's output
        x = self.shared(x)  # the same module, second call
        a, t = self.pair(x)
        return self.head(a + t)


def clean():
    torch.manual_seed(0)
    return Net().eval(), (torch.randn(3, 16),)


def odd():
    torch.manual_seed(0)
    return Net(odd=True).eval(), (torch.randn(3, 16),)


def big_activations():
    """fp32-safe, fp16-unsafe: the first block's output reaches ~1e6 (fp16 tops out at 65504)."""
    torch.manual_seed(0)
    net = Net().eval()
    with torch.no_grad():
        net.blocks[0].fc.weight.mul_(3e5)
        net.blocks[1].fc.weight.mul_(1e-5)
    return net, (torch.randn(3, 16),)


def line_of(marker: str) -> int:
    """The line number of the source line carrying ``# MARKER``."""
    from pathlib import Path

    for k, line in enumerate(Path(__file__).read_text().splitlines(), 1):
        if line.rstrip().endswith(f"# {marker}"):
            return k
    raise LookupError(marker)
