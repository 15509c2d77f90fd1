"""Small bundled models for ``onnxbridge demo`` and the docs (random weights, no downloads)."""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Conv + batch norm + residual + pooling + classifier: an image model in miniature."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.block = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16))
        self.head = nn.Linear(16, classes)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.stem(pixel_values)
        x = torch.relu(x + self.block(x))
        return self.head(x.mean(dim=(2, 3)))


class TinyTextClassifier(nn.Module):
    """Embedding + a transformer encoder layer, keyword inputs, dict outputs."""

    def __init__(self, vocab: int = 1000, dim: int = 32, classes: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(dim, nhead=4, dim_feedforward=64, batch_first=True, dropout=0.0),
            num_layers=1,
            enable_nested_tensor=False,
        )
        self.classifier = nn.Linear(dim, classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.encoder(self.embed(input_ids), src_key_padding_mask=attention_mask == 0)
        m = attention_mask.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        return {"logits": self.classifier(pooled), "last_hidden_state": h}


def small_cnn():
    """(model, example inputs) with random weights and non-trivial batch-norm statistics."""
    with torch.random.fork_rng():  # seeded, without touching the caller's global RNG
        torch.manual_seed(0)
        model = SmallCNN()
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.BatchNorm2d) and m.running_mean is not None and m.running_var is not None:
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 1.5)
        return model.eval(), (torch.randn(2, 3, 32, 32),)


def tiny_text_classifier():
    """(model, keyword example inputs)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = TinyTextClassifier().eval()
        ids = torch.randint(0, 1000, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.int64)
    mask[1, 9:] = 0
    return model, {"input_ids": ids, "attention_mask": mask}
