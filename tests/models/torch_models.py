"""Small PyTorch models with random weights, used as SOURCE file.py:NAME in tests."""

from __future__ import annotations

import torch
from torch import nn


def cnn():
    from onnxbridge.demo.models import small_cnn

    return small_cnn()


class LSTMNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 16, batch_first=True, num_layers=2)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        out, (h, _) = self.lstm(x)
        return self.head(out[:, -1]), h


def lstm():
    torch.manual_seed(0)
    return LSTMNet().eval()


def transformer_encoder():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, nhead=2, dim_feedforward=32, batch_first=True, dropout=0.0)
    return nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False).eval()


def bert():
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=200,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    return BertModel(cfg).eval()


def gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=200, n_embd=32, n_layer=2, n_head=4, n_positions=64, use_cache=False)
    return GPT2LMHeadModel(cfg).eval()


class NestedOutputs(nn.Module):
    """Keyword inputs, a dict output holding a tuple."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(6, 3)

    def forward(self, features, scale):
        y = self.lin(features) * scale
        return {"scores": y, "extras": (y.sum(-1), features.mean(-1))}


def nested_outputs():
    torch.manual_seed(0)
    return NestedOutputs().eval(), {"features": torch.randn(2, 6), "scale": torch.rand(2, 1) + 0.5}


class Branchy(nn.Module):
    """Data-dependent control flow: which branch runs depends on the input values."""

    def forward(self, x):
        if x.mean() > 0:
            return x * 2
        return x - 1


class ExportShy(nn.Module):
    """A block that refuses torch.export, as some libraries' custom blocks do; tracing works."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        if torch.compiler.is_exporting():
            raise NotImplementedError("this block does not support torch.export")
        return self.lin(x)


class Wide(nn.Module):
    """Expects 3 channels: used to prove that a wrong --input is a clean usage error."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x)


not_a_model = 42


class ShapeBranch(nn.Module):
    """Branches on a size: exported at seq=8, the ONNX model is right only up to seq=24."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        if x.shape[1] > 24:
            return self.lin(x) * 2
        return self.lin(x) + 1


def shape_branch():
    torch.manual_seed(0)
    return ShapeBranch().eval(), (torch.randn(2, 8, 8),)


class FloorDiv(nn.Module):
    """Integer floor division: a divisor of 0 makes the *source* raise."""

    def forward(self, a, b):
        return torch.div(a, b, rounding_mode="floor")


def floor_div():
    g = torch.Generator().manual_seed(0)
    return FloorDiv(), (torch.randint(-50, 50, (2, 6), generator=g), torch.randint(1, 7, (2, 6), generator=g))


class Stft(nn.Module):
    """An STFT magnitude front end (n_fft 64, hop 16, reflect padding) and a linear layer: the source
    itself cannot run fewer than 33 samples."""

    def __init__(self, n_fft: int = 64, hop: int = 16) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft))
        self.proj = nn.Linear(n_fft // 2 + 1, 8)

    def forward(self, wav):
        spec = torch.stft(wav, self.n_fft, self.hop, window=self.window, return_complex=True, center=True)
        return self.proj(spec.abs().transpose(1, 2))


def stft():
    torch.manual_seed(0)
    return Stft().eval(), (torch.randn(2, 400),)


class Noisy(nn.Module):
    """Adds noise in forward: the source does not repeat itself."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x):
        h = self.lin(x)
        return h + 0.1 * torch.randn_like(h)


def noisy():
    torch.manual_seed(0)
    return Noisy().eval(), (torch.randn(2, 8),)


class Gated(nn.Module):
    """Refuses a gate that is not all ones: every input generated from --input alone fails."""

    def forward(self, x, gate):
        if not bool((gate == 1).all()):
            raise ValueError("gate must be all ones")
        return x * 2


class Ascending(nn.Module):
    """Checks (in eager only, as libraries check their inputs) that steps ascend: the example runs, no
    random draw in its range does."""

    def forward(self, x, steps):
        if not torch.compiler.is_exporting() and not torch.jit.is_tracing():
            if not bool((steps[:, 1:] >= steps[:, :-1]).all()):
                raise ValueError("steps must be ascending")
        return x * steps


def ascending():
    return Ascending(), (torch.randn(2, 6), torch.arange(6).repeat(2, 1))


class Diff(nn.Module):
    """torch.diff has no TorchScript-to-ONNX symbolic at opset 17 (transformers' masking code uses it)."""

    def forward(self, x):
        return torch.diff(x, dim=-1)
