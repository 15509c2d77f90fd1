"""The torch.export probe's answers, kept on disk between converts of the same architecture.

The probe (:class:`~.torch_routes.DataDependenceProbe`) traces forward on fake tensors: its answers (does
forward branch on tensor values; each dynamic axis's exported range and guard) depend on the model's code,
its config and the inputs' specs, never on the weights. A fine-tune converted again, or the same
architecture in a loop or on every CI run, asks the same question: the answer is read back instead of
traced again (t5: 2 s; see docs/bench.md).

Only where the code is known by a version: every module class of the model comes from an installed
distribution (transformers, torch) whose version is in the key, forward is the class's own and no hook is
registered. A model from a Python file, remote code from a folder, or a patched forward is probed every
time. The key also holds the torch, transformers and onnxbridge versions, the config, the call (inputs,
keywords, specs, example shapes) and the training flag. Entries are JSON, read back only when the whole key
matches; anything unreadable is a miss. ``ONNXBRIDGE_NO_CACHE=1`` turns it off, ``ONNXBRIDGE_CACHE_DIR``
moves it (default ``$XDG_CACHE_HOME/onnxbridge``, else ``~/.cache/onnxbridge``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..results import ExportedAxis

if TYPE_CHECKING:
    from .base import SourceModel
    from .torch_runner import TorchCall

__all__ = ["cache_dir", "load", "store"]

PROBE_VERSION = 1  # bump when the probe's answers change meaning
_VERSIONED = ("torch", "transformers")  # distributions whose modules are code known by a version


def cache_dir() -> Path | None:
    """Where answers are kept; None when caching is off."""
    if os.environ.get("ONNXBRIDGE_NO_CACHE", "").strip() not in ("", "0"):
        return None
    if os.environ.get("ONNXBRIDGE_CACHE_DIR"):
        return Path(os.environ["ONNXBRIDGE_CACHE_DIR"]) / "probe"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "onnxbridge" / "probe"


def load(loaded: SourceModel[TorchCall]) -> tuple[bool, tuple[ExportedAxis, ...]] | None:
    """(the verdict, the ranges) recorded for this model and call, or None."""
    found = _entry(loaded)
    if found is None:
        return None
    path, key = found
    try:
        data = json.loads(path.read_text())
        if data.get("key") != key or not isinstance(data.get("verdict"), bool):
            return None
        axes = tuple(ExportedAxis(str(a), int(lo), None if hi is None else int(hi), g) for a, lo, hi, g in data["axes"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return data["verdict"], axes


def store(loaded: SourceModel[TorchCall], verdict: bool | None, axes: tuple[ExportedAxis, ...]) -> None:
    """Record a probe's answers (a verdict torch.export could not give is not recorded). Never raises."""
    if verdict is None:
        return
    found = _entry(loaded)
    if found is None:
        return
    path, key = found
    entry = {"key": key, "verdict": verdict, "axes": [[a.axis, a.lo, a.hi, a.guard] for a in axes]}
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entry))
        os.replace(tmp, path)


def _entry(loaded: SourceModel[TorchCall]) -> tuple[Path, dict[str, Any]] | None:
    folder = cache_dir()
    if folder is None:
        return None
    try:
        key = _key(loaded)
    except Exception:  # anything odd about the model: no caching, the probe runs
        return None
    if key is None:
        return None
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return folder / f"{digest}.json", key


def _key(loaded: SourceModel[TorchCall]) -> dict[str, Any] | None:
    """Everything the probe's answers depend on, or None when the model's code is not known by a version."""
    import torch

    model = loaded.model
    if not isinstance(model, torch.nn.Module) or "forward" in vars(model):
        return None
    classes = set()
    for module in model.modules():
        if module._forward_hooks or module._forward_pre_hooks or "forward" in vars(module):
            return None
        cls = type(module)
        classes.add(f"{cls.__module__}.{cls.__qualname__}")
    packages = {name.split(".", 1)[0] for name in classes}
    if not packages <= set(_VERSIONED):
        return None
    config = getattr(model, "config", None)
    to_json = getattr(config, "to_json_string", None)
    example = loaded.example
    return {
        "probe": PROBE_VERSION,
        "versions": {name: _version(name) for name in ("onnxbridge", *sorted(packages))},
        "python": list(sys.version_info[:2]),
        "classes": sorted(classes),
        "config": to_json(use_diff=False) if to_json is not None else None,
        "attention": getattr(config, "_attn_implementation", None),
        "training": model.training,
        "dtypes": sorted({str(p.dtype) for p in model.parameters()}),
        "call": [loaded.state.call, list(loaded.state.arg_order), repr(sorted(loaded.state.fixed_kwargs.items()))],
        "specs": [repr(s) for s in loaded.specs],
        "example": {n: [list(a.shape), str(a.dtype)] for n, a in sorted(example.items())},
    }


def _version(package: str) -> str:
    if package == "onnxbridge":
        from .._version import __version__

        return __version__
    module = sys.modules.get(package)
    version = getattr(module, "__version__", None)
    if version is None:
        from importlib.metadata import version as dist_version

        version = dist_version(package)
    return str(version)
