"""PyTorch helpers: output flattening and naming, safe ``.pt2`` loading, quiet exports, errors."""

from __future__ import annotations

import contextlib
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .._util import first_line, quiet
from ..errors import InputError, UnsafeInputError

__all__ = [
    "flatten_outputs",
    "output_names_for",
    "load_exported_program",
    "failing_op",
]


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
    m = re.search(r"You marked L\['(\w+)'\]\.size\(\)\[(\d+)\] as dynamic but your code specialized it to be a "
                  r"constant \((\d+)\)", text)
    if m:
        return f"input '{m.group(1)}' dim {m.group(2)} declared dynamic, but the model fixes it to {m.group(3)}"
    for pat in _OP_PATTERNS:
        m = pat.search(text)
        if m:
            return m.group(1)
    return None
