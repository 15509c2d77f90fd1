"""The converter registry: built-in converters plus the ``onnxbridge.converters`` entry-point group.

Nothing heavy is imported here: a converter class is only loaded when its framework is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points

from ..errors import UsageError

__all__ = ["ConverterRegistry", "default_registry", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "onnxbridge.converters"

# framework name -> "module:Class", loaded lazily
BUILTIN_CONVERTERS = {
    "pytorch": "onnxbridge.converters.pytorch:TorchConverter",
    "tensorflow": "onnxbridge.converters.tensorflow:TfConverter",
    "keras": "onnxbridge.converters.keras:KerasConverter",
}


class ConverterRegistry:
    """Framework name -> converter class, loaded on first use. Duplicate names are an error."""

    def __init__(self) -> None:
        self._targets: dict[str, str | Callable[[], type]] = {}
        self._loaded: dict[str, type] = {}

    def register(self, framework: str, target: str | type | None = None):
        """Register ``target`` ("module:Class" or a class); usable as a class decorator."""

        def add(obj: str | type) -> str | type:
            if framework in self._targets or framework in self._loaded:
                raise ValueError(f"a converter for {framework!r} is already registered")
            if isinstance(obj, str):
                self._targets[framework] = obj
            else:
                self._loaded[framework] = obj
            return obj

        if target is None:
            return add
        return add(target)

    def names(self) -> list[str]:
        """Every registered framework name."""
        return sorted(set(self._targets) | set(self._loaded))

    def get(self, framework: str) -> type:
        """The converter class for ``framework``; raises ``UsageError`` for an unknown one."""
        if framework in self._loaded:
            return self._loaded[framework]
        target = self._targets.get(framework)
        if target is None:
            raise UsageError(
                f"no converter for framework {framework!r}", f"known frameworks: {', '.join(self.names())}"
            )
        cls = _load_target(target) if isinstance(target, str) else target()
        self._loaded[framework] = cls
        return cls

    def load_entry_points(self, eps: Iterable | None = None) -> None:
        """Add converters from the ``onnxbridge.converters`` entry-point group (built-ins win)."""
        for ep in eps if eps is not None else entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self._targets or ep.name in self._loaded:
                if self._targets.get(ep.name) == ep.value:
                    continue  # our own built-in, advertised through the entry point too
                raise ValueError(
                    f"entry point {ep.name!r} = {ep.value!r} clashes with an already registered converter"
                )
            self._targets[ep.name] = ep.load


def _load_target(target: str) -> type:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


_DEFAULT: ConverterRegistry | None = None


def default_registry() -> ConverterRegistry:
    """The process-wide registry: built-ins, then entry points."""
    global _DEFAULT
    if _DEFAULT is None:
        reg = ConverterRegistry()
        for name, target in BUILTIN_CONVERTERS.items():
            reg.register(name, target)
        reg.load_entry_points()
        _DEFAULT = reg
    return _DEFAULT
