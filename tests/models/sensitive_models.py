"""Numerically sensitive models, correct and wrong, for the precision oracle's tests (issue 21).

Random weights with BatchNorm statistics set from one batch of two images, logits out: deep layers at 1x1
whose statistics come from two values per channel amplify float32 rounding well past atol 1e-4 + rtol 1e-3,
as trained and random networks alike do (Keras applications, torchvision's inception_v3). ``masked_attention``
is a tiny attention layer whose padded rows attend to nothing: PyTorch gives 0 there, the exported graph NaN.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["bn_from_one_batch", "inception_like", "masked_attention", "mobilenet_v2"]


def bn_from_one_batch(model: nn.Module, batch: torch.Tensor) -> nn.Module:
    """Set every BatchNorm's running statistics from ``batch`` alone (momentum 1), then eval mode."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = 1.0
    model.train()
    with torch.no_grad():
        model(batch)
    return model.eval()


class _Mixed(nn.Module):
    """An inception-like block: 1x1, 1x1 -> depthwise 3x3, 1x1 -> depthwise 5x5, concatenated, projected,
    added to its input."""

    def __init__(self, c: int) -> None:
        super().__init__()
        q = c // 4
        self.b1 = nn.Sequential(nn.Conv2d(c, c // 2, 1), nn.BatchNorm2d(c // 2), nn.ReLU6())
        self.b3 = nn.Sequential(
            nn.Conv2d(c, q, 1),
            nn.BatchNorm2d(q),
            nn.ReLU6(),
            nn.Conv2d(q, q, 3, padding=1, groups=q),
            nn.BatchNorm2d(q),
            nn.ReLU6(),
        )
        self.b5 = nn.Sequential(
            nn.Conv2d(c, q, 1),
            nn.BatchNorm2d(q),
            nn.ReLU6(),
            nn.Conv2d(q, q, 5, padding=2, groups=q),
            nn.BatchNorm2d(q),
            nn.ReLU6(),
        )
        self.proj = nn.Sequential(nn.Conv2d(c, c, 1), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(torch.cat([self.b1(x), self.b3(x), self.b5(x)], 1))


class InceptionLike(nn.Module):
    """32x32 -> five stride-2 conv+BN stages -> 1x1, eight mixed blocks (45 BatchNorms in all), logits."""

    def __init__(self, c: int = 16, blocks: int = 8, classes: int = 10) -> None:
        super().__init__()
        down: list[nn.Module] = []
        for i in range(5):
            down += [nn.Conv2d(3 if i == 0 else c, c, 3, stride=2, padding=1), nn.BatchNorm2d(c), nn.ReLU6()]
        self.stem = nn.Sequential(*down)
        self.blocks = nn.Sequential(*[_Mixed(c) for _ in range(blocks)])
        self.classifier = nn.Linear(c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.blocks(self.stem(x)).mean((2, 3)))


def inception_like(seed: int = 2) -> tuple[nn.Module, tuple[torch.Tensor]]:
    """The sensitive inception-like CNN and an example ``[2, 3, 32, 32]`` input."""
    torch.manual_seed(seed)
    model = bn_from_one_batch(InceptionLike(), torch.randn(2, 3, 32, 32))
    return model, (torch.randn(2, 3, 32, 32),)


def mobilenet_v2():
    """Keras MobileNetV2 (weights=None, 10 classes, 32x32, logits), BatchNorm statistics from four images."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(
        weights=None, classes=10, input_shape=(32, 32, 3), classifier_activation=None
    )
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(np.random.default_rng(0).standard_normal((4, 32, 32, 3)).astype(np.float32), training=True)
    return model


class MaskedAttention(nn.Module):
    """Embedding -> one attention layer whose padded query rows see no key -> a linear head per token."""

    def __init__(self, vocab: int = 50, d: int = 16) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.qkv = nn.Linear(d, 3 * d)
        self.head = nn.Linear(d, d)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(self.embed(input_ids)).chunk(3, dim=-1)
        m = attention_mask.bool()
        allowed = m[:, None, :] & m[:, :, None]  # a padded row attends to nothing
        # PyTorch's attention gives 0 on a row that sees no key; the exported graph's softmax gives NaN
        out = nn.functional.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None], attn_mask=allowed[:, None])
        return self.head(out[:, 0])  # [batch, seq, d]


def masked_attention() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    ids = torch.randint(0, 50, (2, 8))
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3])
    return MaskedAttention().eval(), (ids, mask)
