"""PyTorch eager as the reference runner."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["TorchRunner", "to_torch", "to_numpy", "forward_args"]


def to_torch(arr: np.ndarray) -> Any:
    """numpy -> torch tensor (bfloat16 through float32, since numpy has no native bfloat16)."""
    import torch

    if arr.dtype.name == "bfloat16":
        return torch.from_numpy(arr.astype(np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(arr))


def to_numpy(t: Any) -> np.ndarray:
    """torch tensor -> numpy (bfloat16 as float32)."""
    import torch

    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


def forward_args(call: str, arg_order: tuple[str, ...], tensors: Mapping[str, Any]) -> tuple[tuple, dict[str, Any]]:
    """(args, kwargs) for ``forward``: the inputs in ``arg_order``, by keyword when ``call`` is
    ``"kwargs"``, else positionally."""
    if call == "kwargs":
        return (), {n: tensors[n] for n in arg_order}
    return tuple(tensors[n] for n in arg_order), {}


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

        args, kwargs = forward_args(self.call, self.arg_order, {k: to_torch(v) for k, v in feeds.items()})
        with torch.inference_mode():
            out = self.module(*args, **kwargs)
        return [to_numpy(t) for _, t in flatten_outputs(out)]
