"""PyTorch eager against the ONNX model: the first module whose output diverges.

:class:`TorchTracer` reports module calls through forward pre/post hooks on every module
(``with_kwargs=True``; tensors pytree-flattened, so tuples, dicts and ``ModelOutput`` work). Call
indices count calls per module object, as the ExportedProgram's ``nn_module_stack`` (``shared@1``,
stamped on the nodes at export) and TorchScript's scopes (``shared_1``) do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .compare import Scorer
from .descent import CallTree, OnEnd, OnStart, call_tree, map_calls
from .finding import Finding
from .framework import localize_calls
from .graph import ValueFetcher
from .origins import ModuleRef, module_source, origins

if TYPE_CHECKING:
    import onnx

__all__ = ["TorchTracer", "localize_torch"]


def _tensors(obj: Any) -> list[Any]:
    import torch
    from torch.utils._pytree import tree_flatten

    leaves, _ = tree_flatten(obj)
    return [t for t in leaves if isinstance(t, torch.Tensor)]


def _arrays(tensors: list[Any]):
    from ..converters.torch_runner import to_numpy

    return lambda: [to_numpy(t) for t in tensors]


class TorchTracer:
    """Runs ``module(*args, **kwargs)`` under ``inference_mode`` with hooks on every module."""

    def __init__(self, module: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        self.module, self.args, self.kwargs = module, tuple(args), dict(kwargs)
        self.names = {id(m): n for n, m in module.named_modules()}

    def run(self, on_start: OnStart, on_end: OnEnd) -> None:
        import torch

        counts: dict[int, int] = {}
        stack: list[ModuleRef] = []

        def pre(module: Any, args: Any, kwargs: Any) -> None:
            k = id(module)
            counts[k] = counts.get(k, 0) + 1
            ref = ModuleRef(self.names.get(k, f"<unnamed {type(module).__name__}>"), counts[k] - 1)
            stack.append(ref)
            ts = _tensors((args, kwargs))
            on_start(ref, type(module).__name__, _arrays(ts), sum(t.nbytes for t in ts))

        def post(module: Any, args: Any, kwargs: Any, output: Any) -> None:
            ts = _tensors(output)
            on_end(stack.pop(), _arrays(ts), sum(t.nbytes for t in ts))

        handles = []
        for m in self.module.modules():
            handles.append(m.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(m.register_forward_hook(post, with_kwargs=True))
        try:
            with torch.inference_mode():
                self.module(*self.args, **self.kwargs)
        finally:
            for h in handles:
                h.remove()


def localize_torch(
    module: Any,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    candidate: onnx.ModelProto,
    feeds: Mapping[str, np.ndarray],
    scorer: Scorer,
    *,
    budget_bytes: int,
    provider: str = "cpu",
) -> Finding:
    """The first module of ``module`` whose output differs from the ONNX model's value for it."""
    modules = dict(module.named_modules())
    table = origins(candidate, modules)
    fetcher = ValueFetcher(candidate, provider)
    cmap = map_calls(fetcher.index, table)
    tracer = TorchTracer(module, args, kwargs)
    tree = call_tree(tracer)
    notes: list[str] = []
    if not cmap:
        notes.append(
            "no ONNX node names a module of the source (no exporter metadata or scoped names): "
            "only the stage table applies; re-export with onnxbridge convert"
        )
    cmap, left_out = _drop_ambiguous(cmap, tree, any(not o.calls_known for o in table.values()))
    if left_out:
        notes.append(
            f"modules called more than once were not compared ({', '.join(left_out[:8])}): the ONNX file "
            "does not say which call made each node; files written by onnxbridge convert do"
        )

    def source_of(ref: ModuleRef):
        mod = modules.get(ref.qualname)
        return module_source(mod) if mod is not None else None

    return localize_calls(
        tracer,
        tree,
        cmap,
        table,
        fetcher,
        feeds,
        scorer,
        budget_bytes=budget_bytes,
        kind="module",
        source_of=source_of,
        notes=tuple(notes),
    )


def _drop_ambiguous(cmap: dict, tree: CallTree, unstamped: bool) -> tuple[dict, list[str]]:
    """Without stamped call indices both calls of a shared module look like call 0: leave them out
    rather than compare call 1 with call 0's values."""
    if not unstamped:
        return cmap, []
    multi = sorted({r.qualname for r in tree.calls if r.call > 0})
    return {r: v for r, v in cmap.items() if r.qualname not in multi}, multi
