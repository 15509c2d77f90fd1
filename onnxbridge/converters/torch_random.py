"""Which random ops a PyTorch forward calls, and from which line: the reason a source does not repeat."""

from __future__ import annotations

import os
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["random_ops"]


def _user_frame(skip: tuple[str, ...]) -> traceback.FrameSummary | None:
    """The innermost frame outside the folders ``skip``."""
    from .torch_utils import inside

    for frame in reversed(traceback.extract_stack()):
        if not inside(frame.filename, *skip):
            return frame
    return None


def _deterministic_attention(func: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
    """SDPA kernels carry the random tag because they *can* drop out; at dropout_p 0 (eval) they do not."""
    if "scaled_dot_product" not in str(func):
        return False
    p = kwargs.get("dropout_p", args[3] if len(args) > 3 and isinstance(args[3], (int, float)) else 0.0)
    return not p


def random_ops(module: Any, args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None) -> list[str]:
    """Run ``module(*args, **kwargs)`` once and list each seeded-random aten op it called (those tagged
    ``torch.Tag.nondeterministic_seeded``: randn_like, rand, bernoulli, dropout...) with the innermost
    frame outside torch: ``aten.randn_like.default at model.py:12 (return h + torch.randn_like(h))``."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    from .torch_utils import torch_dir

    skip = (torch_dir(), os.path.dirname(os.path.abspath(__file__)))
    seeded = torch.Tag.nondeterministic_seeded
    found: dict[tuple[str, str], str] = {}

    class Recorder(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, a=(), kw=None):
            if seeded in getattr(func, "tags", ()) and not _deterministic_attention(func, a, kw or {}):
                frame = _user_frame(skip)
                where = f"{os.path.basename(frame.filename)}:{frame.lineno}" if frame else "?"
                code = f" ({frame.line.strip()})" if frame and frame.line else ""
                found.setdefault((str(func), where), f"{func} at {where}{code}")
            return func(*a, **(kw or {}))

    with torch.no_grad(), Recorder():
        module(*args, **(kwargs or {}))
    return list(found.values())
