"""Benchmark models built from configs with random weights (no downloads).

Each factory returns ``(model, example_inputs)`` so it is a SOURCE for onnxbridge
(``bench/models.py:bert_base``). Sizes follow the published base configurations.
"""

from __future__ import annotations

SEQ = 128


def _seeded():
    import torch

    torch.manual_seed(0)


def _trained_like(model):
    """Random but non-trivial 1-D parameters: fresh models have zero biases and unit norms, which
    exporters and onnxsim fold away (and trained models never have), changing the graph we time."""
    import torch

    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.02 * torch.randn(p.shape, generator=gen))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(1.0 + 0.1 * torch.rand(m.running_var.shape, generator=gen))
    return model.eval()


def resnet18():
    """A ResNet-18-shaped CNN (basic blocks, depths 2-2-2-2), 224x224 images, 1000 classes."""
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification

    _seeded()
    config = ResNetConfig(
        layer_type="basic", depths=[2, 2, 2, 2], hidden_sizes=[64, 128, 256, 512], embedding_size=64, num_labels=1000
    )
    model = _trained_like(ResNetForImageClassification(config))
    return model, {"pixel_values": torch.randn(2, 3, 224, 224)}


def bert_base():
    """A BERT-base-sized encoder (12 layers, hidden 768, 12 heads), sequence 128."""
    import torch
    from transformers import BertConfig, BertModel

    _seeded()
    config = BertConfig(hidden_act="gelu", attn_implementation="eager")
    model = _trained_like(BertModel(config, add_pooling_layer=True))
    ids = torch.randint(0, config.vocab_size, (2, SEQ))
    return model, {"input_ids": ids, "attention_mask": torch.ones(2, SEQ, dtype=torch.int64)}


def gpt2_small():
    """A GPT-2-small-sized decoder (12 layers, hidden 768, 12 heads), sequence 128, no KV cache."""
    import torch
    from transformers import GPT2Config, GPT2Model

    _seeded()
    config = GPT2Config(use_cache=False, attn_implementation="eager")
    model = _trained_like(GPT2Model(config))
    ids = torch.randint(0, config.vocab_size, (2, SEQ))
    return model, {"input_ids": ids, "attention_mask": torch.ones(2, SEQ, dtype=torch.int64)}
