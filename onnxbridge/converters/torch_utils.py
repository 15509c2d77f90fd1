"""PyTorch helpers: output flattening and naming, Hugging Face caches, examples grown past the 0/1
specialisation, training flags kept, safe ``.pt2`` loading, quiet exports, errors."""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._util import first_line, quiet
from ..errors import InputError, UnsafeInputError

__all__ = [
    "is_exported_program",
    "flatten_outputs",
    "output_names_for",
    "load_exported_program",
    "failing_op",
    "without_cache",
    "grow_small_axes",
    "keep_training_flags",
    "math_attention",
    "inside",
    "torch_dir",
    "forward_params",
]


def _configs(model: Any) -> list[Any]:
    """Every distinct Hugging Face config reachable from the model's modules (sub-configs included):
    T5 and BART deep-copy the config into their encoder and decoder stacks."""
    seen: dict[int, Any] = {}
    for module in model.modules():
        cfg = getattr(module, "config", None)
        if cfg is not None and hasattr(cfg, "use_cache"):
            seen.setdefault(id(cfg), cfg)
    for cfg in list(seen.values()):
        for sub in ("text_config", "vision_config", "audio_config", "encoder", "decoder"):
            inner = getattr(cfg, sub, None)
            if inner is not None and hasattr(inner, "use_cache"):
                seen.setdefault(id(inner), inner)
    return list(seen.values())


def without_cache(model: Any) -> dict[str, Any]:
    """Switch a Hugging Face model's KV cache off, for export and reference alike: ``use_cache=False``
    on every config it holds, and the forward keyword to pass (``{"use_cache": False}`` when forward
    takes it: the config alone is not always respected). A cache object (``DynamicCache``,
    ``EncoderDecoderCache``) in the outputs stops both exporters; without it the outputs keep stable
    names (``logits``, ``encoder_last_hidden_state``). Returns {} for models without a cache."""
    configs = _configs(model)
    for cfg in configs:
        cfg.use_cache = False
    try:
        takes = "use_cache" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        takes = False
    return {"use_cache": False} if takes and configs else {}


def grow_small_axes(
    example: Mapping[str, np.ndarray], dynamic: Mapping[str, Mapping[int, str]], to: int = 2
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """The example with every dynamic axis of size 0 or 1 grown to ``to`` (repeating its values, as
    optimum's dummy inputs are never 0/1), and {axis name: old size} for those grown.

    torch.export specialises sizes 0 and 1: a batch-1 example with a dynamic batch fails ("conflicts
    between user-specified ranges and inferred ranges"). Repeating keeps ids in the vocabulary and masks
    valid; an axis of size 0 has nothing to repeat and gets zeros.
    """
    sizes: dict[str, int] = {}
    for name, axes in dynamic.items():
        for ax, axis in axes.items():
            sizes.setdefault(axis, int(example[name].shape[ax]))
    grown = {a: s for a, s in sizes.items() if s in (0, 1)}
    out = {}
    for name, arr in example.items():
        for ax, axis in (dynamic.get(name) or {}).items():
            if axis not in grown:
                continue
            if arr.shape[ax] == 0:
                shape = list(arr.shape)
                shape[ax] = to
                arr = np.zeros(shape, arr.dtype)
            else:
                arr = np.repeat(arr, to, axis=ax)
        out[name] = arr
    return out, grown


@contextlib.contextmanager
def keep_training_flags(model: Any) -> Iterator[None]:
    """Restore every submodule's ``training`` flag on exit: exporters call ``.train()`` / ``.eval()``
    recursively, and a model left in training mode makes every later reference run random (dropout,
    drop-path)."""
    modules = list(model.modules()) if hasattr(model, "modules") else []
    flags = [(m, m.training) for m in modules]
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


@contextlib.contextmanager
def math_attention() -> Iterator[None]:
    """``scaled_dot_product_attention`` on its math kernel: torch.onnx's decompositions fail on the
    output strides of the CPU flash kernel ("Cannot view a tensor with shape ...", T5, Swin:
    pytorch#136543). Only the ONNX step needs it; the numbers do not change."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        yield


def dim_specs(dynamic: Mapping[int, str], ranges: Mapping[str, Any]) -> dict[int, Any] | None:
    """torch.export's spec of one input: ``Dim.DYNAMIC`` per dynamic axis, bounded by a declared range
    (``seq=1..24``: max 24; a lower bound only from 2, since torch.export specialises 0 and 1)."""
    import torch

    if not dynamic:
        return None
    out = {}
    for ax, axis in dynamic.items():
        r = ranges.get(axis)
        bounds = {}
        if r is not None and r.hi is not None:
            bounds["max"] = max(int(r.hi), 2)
        if r is not None and r.lo >= 2:
            bounds["min"] = int(r.lo)
        out[ax] = torch.export.Dim.DYNAMIC(**bounds) if bounds else torch.export.Dim.DYNAMIC
    return out


def _key_name(key: Any) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def flatten_outputs(out: Any) -> list[tuple[str, Any]]:
    """(name, tensor) for every tensor leaf of a tensor / tuple / dict / ModelOutput, in pytree order.

    Names join the path: ``logits``, ``hidden_states.0``; a bare tensor is ``output``, the
    items of a top-level tuple are ``output_0``, ``output_1``...
    """
    import torch
    from torch.utils._pytree import tree_flatten_with_path

    if isinstance(out, torch.Tensor):
        return [("output", out)]
    leaves, _ = tree_flatten_with_path(out)
    named: list[tuple[str, Any]] = []
    top_is_seq = isinstance(out, (tuple, list))
    for path, leaf in leaves:
        if not isinstance(leaf, torch.Tensor):
            continue
        parts = [_key_name(k) for k in path]
        if top_is_seq and parts:
            parts[0] = f"output_{parts[0]}"
        named.append((".".join(parts) or "output", leaf))
    return named


def output_names_for(out: Any) -> tuple[str, ...]:
    """The readable output names :func:`flatten_outputs` gives, made unique."""
    seen: dict[str, int] = {}
    names = []
    for name, _ in flatten_outputs(out):
        n = seen.get(name, 0)
        seen[name] = n + 1
        names.append(name if n == 0 else f"{name}_{n}")
    return tuple(names)


@contextlib.contextmanager
def _weights_only_torch_load() -> Iterator[None]:
    """Force ``torch.load(weights_only=True)`` and refuse raw pickles while a .pt2 is read."""
    import pickle

    import torch

    real_load = torch.load
    real_loads = pickle.loads
    real_obj = getattr(torch._C, "_pickle_load_obj", None)

    def safe_load(*args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        return real_load(*args, **kwargs)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise pickle.UnpicklingError("a raw pickle (arbitrary Python objects) is stored in the archive")

    torch.load = safe_load
    pickle.loads = refuse
    if real_obj is not None:
        torch._C._pickle_load_obj = refuse
    try:
        yield
    finally:
        torch.load = real_load
        pickle.loads = real_loads
        if real_obj is not None:
            torch._C._pickle_load_obj = real_obj


def load_exported_program(path: Path, *, trust: bool = False) -> Any:
    """``torch.export.load`` that never unpickles arbitrary objects unless ``trust`` is set."""
    import pickle

    import torch

    if not zipfile.is_zipfile(path):
        raise InputError(f"{path} is not a .pt2 archive (not a zip file)", "save it with torch.export.save")
    try:
        with quiet():
            if trust:
                return torch.export.load(str(path))
            with _weights_only_torch_load():
                return torch.export.load(str(path))
    except pickle.UnpicklingError as e:
        raise UnsafeInputError(
            f"{path}: refused to unpickle: {first_line(e, 200, with_type=False)}",
            "loading it could run arbitrary code; if you trust the file, pass --trust-model",
        ) from e
    except (InputError, UnsafeInputError):
        raise
    except Exception as e:
        raise InputError(
            f"{path} is not a readable torch.export archive ({first_line(e, 200)})",
            "re-create it with torch.export.save",
        ) from e


_OP_PATTERNS = (
    re.compile(r"operator '?(aten::[\w.]+)'?"),
    re.compile(r"\b(aten(?:::|\.)[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)?)"),
    re.compile(r"\b(prim::[\w]+)"),
)


def failing_op(e: BaseException) -> str | None:
    """The op or construct an export error points at, when the message tells."""
    text = str(e)
    if "data-dependent" in text or "GuardOnDataDependent" in type(e).__name__:
        line = re.search(r"code: (.+)", text)
        where = f" ({line.group(1).strip()[:120]})" if line else ""
        return "data-dependent control flow" + where
    if "Python boolean" in text:
        return "data-dependent control flow"
    m = re.search(
        r"You marked L\['(\w+)'\]\.size\(\)\[(\d+)\] as dynamic but your code specialized it to be a "
        r"constant \((\d+)\)",
        text,
    )
    if m:
        return f"input '{m.group(1)}' dim {m.group(2)} declared dynamic, but the model fixes it to {m.group(3)}"
    for pat in _OP_PATTERNS:
        m = pat.search(text)
        if m:
            return m.group(1)
    return None


def torch_dir() -> str:
    """The folder of the installed torch package."""
    import torch

    return os.path.dirname(os.path.abspath(torch.__file__))


def inside(filename: str, *folders: str) -> bool:
    """True when ``filename`` lies in one of ``folders`` (a folder, not a name prefix: torchvision's
    files are not torch's)."""
    path = os.path.abspath(filename)
    return any(path.startswith(os.path.join(os.path.abspath(f), "")) for f in folders)


def forward_params(module: Any) -> list[inspect.Parameter]:
    """The parameters of ``module.forward`` ([] when it has no readable signature)."""
    try:
        return list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return []


def is_exported_program(obj: Any) -> bool:
    import torch

    return isinstance(obj, torch.export.ExportedProgram)
