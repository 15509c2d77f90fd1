"""What ``inspect`` reports about an ONNX file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .serialize import fields_plain

__all__ = ["ModelInfo", "TargetCheck"]


@dataclass(frozen=True)
class TargetCheck:
    """One target's verdict on a model: the problems found, and a conversion that fixes them (when the
    opset alone is in the way), with whether that conversion kept parity."""

    target: str
    ok: bool
    problems: tuple[str, ...] = ()
    fix_opset: int | None = None
    fix_command: str | None = None
    fix_parity: bool | None = None
    fix_note: str | None = None
    source: str = ""


@dataclass(frozen=True)
class ModelInfo:
    """What ``onnxbridge inspect`` shows: opsets, inputs and outputs, op histogram, parameters, size."""

    path: str
    size_bytes: int
    ir_version: int
    opsets: dict[str, int]
    producer: str
    inputs: list[dict[str, Any]]  # name, shape, dtype (docs/schema/inspect.schema.json)
    outputs: list[dict[str, Any]]
    op_histogram: dict[str, int]
    nodes: int
    parameters: int
    initializer_bytes: int
    targets: tuple[TargetCheck, ...] = ()  # inspect --target: can each deployment target load it?
    warnings: tuple[str, ...] = ()  # e.g. versions newer than the installed onnxruntime supports

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``inspect --json`` (schema: docs/schema/inspect.schema.json)."""
        from .._version import __version__

        return {"onnxbridge_version": __version__, "command": "inspect", **fields_plain(self)}
