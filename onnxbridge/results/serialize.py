"""One serializer for every result: frozen dataclasses -> JSON-ready builtins."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["to_plain", "fields_plain", "mapping_plain"]


def to_plain(value: Any, *, own: bool = True) -> Any:
    """Dataclasses, enums, tuples, paths and numpy scalars -> JSON-ready builtins.

    A dataclass with a ``to_dict()`` method is written as that (its derived figures included);
    any other as its fields (``own=False``: the fields even of one with ``to_dict``, for that method
    itself). Non-finite floats (NaN, Inf) become ``None``: JSON has no such numbers.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        custom = getattr(value, "to_dict", None) if own else None
        if custom is not None:
            return to_plain(custom())
        return fields_plain(value)
    if isinstance(value, dict):
        return mapping_plain(value)
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return to_plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):  # NaN and Inf are not JSON
        return None
    return value


def fields_plain(value: DataclassInstance) -> dict[str, Any]:
    """A dataclass's own fields, JSON-ready (what a ``to_dict`` starts from)."""
    return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}


def mapping_plain(value: Mapping[Any, Any]) -> dict[str, Any]:
    """A mapping with its keys as strings and its values JSON-ready."""
    return {str(k): to_plain(v) for k, v in value.items()}
