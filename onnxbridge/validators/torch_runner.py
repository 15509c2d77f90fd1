"""PyTorch eager as the reference runner."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TorchRunner", "to_torch"]


def to_torch(arr: np.ndarray) -> Any:
    """numpy -> torch tensor (bfloat16 through float32, since numpy has no native bfloat16)."""
    import torch

    if arr.dtype.name == "bfloat16":
        return torch.from_numpy(arr.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(arr))


def _to_numpy(t: Any) -> np.ndarray:
    import torch

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


class TorchRunner:
    """Calls the model the way its ``forward`` expects (positional or keyword) under inference mode."""

    name = "pytorch"

    def __init__(self, module: Any, call: str, arg_order: tuple[str, ...], output_names: tuple[str, ...]) -> None:
        self.module = module
        self.call = call
        self.arg_order = arg_order
        self._output_names = output_names

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._output_names

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        import torch

        from ..converters.torch_utils import flatten_outputs

        tensors = {k: to_torch(v) for k, v in feeds.items()}
        with torch.inference_mode():
            if self.call == "kwargs":
                out = self.module(**tensors)
            else:
                out = self.module(*(tensors[n] for n in self.arg_order))
        return [_to_numpy(t) for _, t in flatten_outputs(out)]
