"""The manifest's keys, derived from the option dataclasses they feed (and ``ModelEntry``'s own fields).

A key names one field of an option object (``ExportOptions.routes`` -> ``routes``); its accepted TOML
type comes from the field's annotation, and its value is checked by building the option object, so a
new option field becomes a manifest key with one line in :data:`OPTION_KEYS`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..options import (
    ConvertOptions,
    ExportOptions,
    OptimizeOptions,
    ParityConfig,
    Tolerances,
)

__all__ = ["ManifestKey", "OPTION_KEYS", "option_keys", "entry_keys", "accepted"]


@dataclass(frozen=True)
class ManifestKey:
    """One manifest key: the option class and field it feeds (``owner`` None: the gate's own), the TOML
    types it accepts and how a message describes them, and whether it may be a default for every model."""

    name: str
    owner: type | None
    field: str
    types: tuple[type, ...]
    what: str
    defaultable: bool = True


# manifest key -> (option class, field). Names follow the CLI flags (--optimize, --fuse-transformer, --tol).
OPTION_KEYS: dict[str, tuple[type, str]] = {
    "inputs": (ExportOptions, "inputs"),
    "framework": (ExportOptions, "framework"),
    "opset": (ExportOptions, "opset"),
    "routes": (ExportOptions, "routes"),
    "trust_model": (ExportOptions, "trust_model"),
    "task": (ExportOptions, "task"),
    "provider": (ParityConfig, "provider"),
    "seed": (ParityConfig, "seed"),
    "fallback": (ParityConfig, "fallback"),
    "atol": (Tolerances, "atol"),
    "rtol": (Tolerances, "rtol"),
    "tolerances": (Tolerances, "per_output"),
    "optimize": (OptimizeOptions, "target"),
    "fuse_transformer": (OptimizeOptions, "fuse"),
    "simplify": (ConvertOptions, "simplify"),
    "simplifier": (ConvertOptions, "simplifier"),
    "external_data": (ConvertOptions, "external_data"),
}
# keys that name one model only
_NOT_DEFAULTABLE = ("name", "source", "onnx", "fixtures", "inputs")
_WHAT = {
    "inputs": 'a list of "NAME:DIMS[:DTYPE]" strings',
    "routes": 'a list of route names, e.g. ["torchscript"]',
    "tolerances": 'per-output tolerances: a table {NAME = ATOL or [ATOL, RTOL]} or a list of "NAME=ATOL[,RTOL]"',
    "framework": "the name of a registered converter (pytorch, keras, tensorflow or a plugin's)",
    "watch": "a list of glob patterns, relative to the manifest",
    "external_data": "true or false (weights in ONNX.data beside the ONNX file; automatic over 2 GB)",
}


def _accepts(annotation: Any) -> tuple[tuple[type, ...], str]:
    """The TOML types a field's annotation accepts, and how to say so."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    origin = typing.get_origin(annotation)
    if annotation is bool:
        return (bool,), "true or false"
    if annotation is int:
        return (int,), "an integer"
    if annotation is float:
        return (int, float), "a number"
    if annotation is str:
        return (str,), "a string"
    if origin is tuple:
        pairs = typing.get_origin(typing.get_args(annotation)[0]) is tuple  # per-output tolerances
        return ((dict, list), "a table or a list") if pairs else ((list,), "a list of strings")
    raise TypeError(f"no manifest form for a field of type {annotation!r}")


def option_keys() -> dict[str, ManifestKey]:
    """The keys that feed option objects, typed from the fields' annotations."""
    out = {}
    for key, (owner, name) in OPTION_KEYS.items():
        hints = typing.get_type_hints(owner)
        if name not in {f.name for f in dataclasses.fields(owner)}:
            raise TypeError(f"{owner.__name__} has no field {name!r} (manifest key {key!r})")
        accepted_types, what = _accepts(hints[name])
        out[key] = ManifestKey(key, owner, name, accepted_types, _WHAT.get(key, what), key not in _NOT_DEFAULTABLE)
    return out


def entry_keys(entry_class: type, skip: tuple[str, ...]) -> dict[str, ManifestKey]:
    """The gate's own keys: the fields of ``ModelEntry`` that no option object holds."""
    hints = typing.get_type_hints(entry_class)
    out = {}
    for f in dataclasses.fields(entry_class):
        if f.name in skip or f.name in OPTION_KEYS:
            continue
        accepted_types, what = _accepts(hints[f.name])
        out[f.name] = ManifestKey(
            f.name, None, f.name, accepted_types, _WHAT.get(f.name, what), f.name not in _NOT_DEFAULTABLE
        )
    return out


def accepted(key: ManifestKey, value: Any) -> bool:
    """``value`` is of a type the key takes (a bool is not a number, lists hold strings)."""
    if not isinstance(value, key.types) or (isinstance(value, bool) and bool not in key.types):
        return False
    if isinstance(value, list) and key.types == (list,):
        return all(isinstance(v, str) for v in value)
    if isinstance(value, Mapping):
        return all(isinstance(k, str) for k in value)
    return True
