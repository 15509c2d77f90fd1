"""The converter registry: built-in converters plus the ``onnxbridge.converters`` entry-point group.

Every list of frameworks (``--framework``'s choices, detection from a file suffix, a folder or a
Python object, the manifest's ``framework`` key) derives from here, so a plugin is a first-class
framework. Nothing heavy is imported: a converter class is loaded when its framework is asked
for, or when a plugin's declared SOURCE forms are needed to recognise a source.

A converter class declares what it recognises as class attributes (all optional):
``suffixes`` (model files, e.g. ``(".pt2",)``), ``dir_markers`` (a folder holding one of these
files, e.g. ``("saved_model.pb",)``) and ``type_modules`` (an object whose class hierarchy comes
from these modules, e.g. ``("torch",)``) and ``packages`` (distributions whose versions change what
an export gives: the gate re-checks a model when one of them changes).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ..errors import UsageError

if TYPE_CHECKING:
    from .base import Converter

_Target = TypeVar("_Target", bound="str | type")

__all__ = ["ConverterRegistry", "FrameworkInfo", "default_registry", "ENTRY_POINT_GROUP", "BUILTIN_FRAMEWORKS"]

ENTRY_POINT_GROUP = "onnxbridge.converters"


@dataclass(frozen=True)
class FrameworkInfo:
    """A framework's name and the SOURCE forms it recognises."""

    name: str
    suffixes: tuple[str, ...] = ()
    dir_markers: tuple[str, ...] = ()
    type_modules: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()  # distributions whose versions change what an export gives

    @classmethod
    def of(cls, name: str, converter: type) -> FrameworkInfo:
        """From a converter class's declared attributes."""
        return cls(
            name,
            tuple(s.lower() for s in getattr(converter, "suffixes", ()) or ()),
            tuple(getattr(converter, "dir_markers", ()) or ()),
            tuple(getattr(converter, "type_modules", ()) or ()),
            tuple(getattr(converter, "packages", ()) or ()),
        )

    def owns_module(self, module: str) -> bool:
        return any(module == m or module.startswith(m + ".") for m in self.type_modules)


_TF = ("tensorflow", "keras", "tf_keras", "tf2onnx", "onnxsim")

# Built-ins, in detection order (Keras before TensorFlow: a Keras model is a TensorFlow object too).
BUILTIN_FRAMEWORKS: tuple[tuple[FrameworkInfo, str], ...] = (
    (
        FrameworkInfo("pytorch", (".pt2",), (), ("torch",), ("torch", "onnxscript", "onnxsim")),
        "onnxbridge.converters.pytorch:TorchConverter",
    ),
    (
        FrameworkInfo("keras", (".keras", ".h5", ".hdf5"), (), ("keras", "tf_keras", "tensorflow.python.keras"), _TF),
        "onnxbridge.converters.keras:KerasConverter",
    ),
    (
        FrameworkInfo("tensorflow", (".tflite",), ("saved_model.pb",), ("tensorflow",), _TF),
        "onnxbridge.converters.tensorflow:TfConverter",
    ),
    (
        FrameworkInfo(
            "huggingface", (), ("config.json",), (), ("torch", "transformers", "safetensors", "onnxscript", "onnxsim")
        ),
        "onnxbridge.converters.huggingface:HfConverter",
    ),
    (
        FrameworkInfo("jax", (), (), ("flax", "jaxlib", "jax", "equinox"), ("jax", "jaxlib", "flax", "jax2onnx")),
        "onnxbridge.converters.jax:JaxConverter",
    ),
    (
        FrameworkInfo("paddle", (".pdiparams", ".pdmodel"), (), ("paddle",), ("paddlepaddle", "paddle2onnx")),
        "onnxbridge.converters.paddle:PaddleConverter",
    ),
)


class ConverterRegistry:
    """Framework name -> converter class, loaded on first use. Duplicate names are an error."""

    def __init__(self) -> None:
        self._targets: dict[str, str | Callable[[], type[Converter]]] = {}
        self._loaded: dict[str, type[Converter]] = {}
        self._infos: dict[str, FrameworkInfo] = {}
        self._origins: dict[str, str] = {}  # framework -> "built-in" or the distribution that registered it

    @overload
    def register(
        self,
        framework: str,
        target: None = None,
        info: FrameworkInfo | None = None,
        origin: str = "registered at run time",
    ) -> Callable[[_Target], _Target]: ...
    @overload
    def register(
        self, framework: str, target: _Target, info: FrameworkInfo | None = None, origin: str = "registered at run time"
    ) -> _Target: ...
    def register(
        self,
        framework: str,
        target: str | type | None = None,
        info: FrameworkInfo | None = None,
        origin: str = "registered at run time",
    ) -> Callable[[_Target], _Target] | str | type:
        """Register ``target`` ("module:Class" or a class); usable as a class decorator. ``info`` declares
        the SOURCE forms without loading the class (else they are read from the class when needed);
        ``origin`` says where it comes from (``built-in``, a distribution) for listings."""

        def add(obj: _Target) -> _Target:
            if framework in self._targets or framework in self._loaded:
                raise UsageError(
                    f"a converter for {framework!r} is already registered ({self.origin(framework)})",
                    "register the converter under another framework name",
                )
            if isinstance(obj, str):
                self._targets[framework] = obj
            else:
                self._loaded[framework] = obj
            if info is not None:
                self._infos[framework] = info
            self._origins[framework] = origin
            return obj

        if target is None:
            return add
        return add(target)

    def origin(self, framework: str) -> str:
        """``built-in``, or the distribution (``name version``) whose entry point registered ``framework``."""
        return self._origins.get(framework, "unknown")

    def names(self) -> list[str]:
        """Every registered framework name, sorted."""
        return sorted(set(self._targets) | set(self._loaded))

    def _order(self) -> list[str]:
        """Framework names in registration order (the detection order)."""
        return list(dict.fromkeys([*self._targets, *self._loaded]))

    def get(self, framework: str) -> type[Converter]:
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

    def check_name(self, framework: str, flag: str = "--framework") -> str:
        """``framework`` itself when it is registered; else a ``UsageError`` listing the names."""
        if framework not in self._targets and framework not in self._loaded:
            raise UsageError(f"unknown {flag} {framework!r}", f"use one of {', '.join(self.names())}")
        return framework

    def info(self, framework: str) -> FrameworkInfo:
        """The SOURCE forms ``framework`` recognises (loads a plugin's class the first time)."""
        if framework not in self._infos:
            self._infos[framework] = FrameworkInfo.of(framework, self.get(framework))
        return self._infos[framework]

    def _infos_in_order(self) -> Iterable[FrameworkInfo]:
        """Declared ones first (no import), then the others (their classes are loaded)."""
        order = self._order()
        yield from (self._infos[n] for n in order if n in self._infos)
        for name in order:
            if name not in self._infos:
                try:
                    yield self.info(name)
                except Exception:  # a broken plugin cannot claim sources; it fails when asked for by name
                    continue

    def for_suffix(self, suffix: str) -> str | None:
        """The framework that reads model files with this suffix."""
        suffix = suffix.lower()
        return next((i.name for i in self._infos_in_order() if suffix in i.suffixes), None)

    def for_folder(self, folder: Path) -> str | None:
        """The framework whose marker file the folder holds."""
        return next((i.name for i in self._infos_in_order() if any((folder / m).exists() for m in i.dir_markers)), None)

    def for_object(self, obj: Any) -> str | None:
        """The framework an object's class hierarchy comes from, without importing anything."""
        cls = obj if inspect.isclass(obj) else type(obj)
        mods = [getattr(k, "__module__", "") or "" for k in inspect.getmro(cls)]
        return next((i.name for i in self._infos_in_order() if any(i.owns_module(m) for m in mods)), None)

    def export_packages(self, framework: str | None) -> tuple[str, ...]:
        """The packages whose versions matter when ``framework`` exports (every framework's when unknown)."""
        if framework is not None and framework in self.names():
            try:
                return self.info(framework).packages
            except Exception:
                pass
        return tuple(dict.fromkeys(p for i in self._infos_in_order() for p in i.packages))

    def source_forms(self) -> str:
        """The file and folder forms every framework reads, for messages."""
        forms = [s for i in self._infos_in_order() for s in i.suffixes]
        forms += [f"a folder with {m}" for i in self._infos_in_order() for m in i.dir_markers]
        return ", ".join(forms)

    def load_entry_points(self, eps: Iterable[EntryPoint] | None = None) -> None:
        """Add converters from the ``onnxbridge.converters`` entry-point group (built-ins win)."""
        for ep in eps if eps is not None else entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in self._targets or ep.name in self._loaded:
                if self._targets.get(ep.name) == ep.value:
                    continue  # our own built-in, advertised through the entry point too
                dist = getattr(ep, "dist", None)
                by = f"{dist.name} {dist.version}" if dist is not None else "an installed distribution"
                raise UsageError(
                    f"the converter plugin {ep.name!r} = {ep.value!r} from {by} clashes with the "
                    f"{self.origin(ep.name)} converter of that name: it is refused",
                    f'rename its entry point in the [project.entry-points."{ENTRY_POINT_GROUP}"] table of the '
                    "plugin's pyproject.toml, or uninstall it",
                )
            self._targets[ep.name] = ep.load
            dist = getattr(ep, "dist", None)
            self._origins[ep.name] = f"{dist.name} {dist.version}" if dist is not None else "entry point"


def _load_target(target: str) -> type[Converter]:
    module_name, _, attr = target.partition(":")
    cls: type[Converter] = getattr(importlib.import_module(module_name), attr)
    return cls


_DEFAULT: ConverterRegistry | None = None


def default_registry() -> ConverterRegistry:
    """The process-wide registry: built-ins, then entry points."""
    global _DEFAULT
    if _DEFAULT is None:
        reg = ConverterRegistry()
        for info, target in BUILTIN_FRAMEWORKS:
            reg.register(info.name, target, info, origin="built-in")
        reg.load_entry_points()
        _DEFAULT = reg
    return _DEFAULT
