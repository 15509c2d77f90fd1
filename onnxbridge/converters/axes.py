"""Dynamic axes in exported graphs: give exporter symbols the user's axis names, note fixed axes."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..specs import TensorSpec

if TYPE_CHECKING:
    import onnx

__all__ = ["name_dynamic_axes", "rename_dim_params"]


def name_dynamic_axes(model: onnx.ModelProto, specs: Sequence[TensorSpec]) -> tuple[str, ...]:
    """Give the exporter's symbols (``unk__12``, ``s77``) the user's axis names; note fixed axes."""
    mapping: dict[str, str] = {}
    notes: list[str] = []
    by_name = {s.name: s for s in specs}
    for inp in model.graph.input:
        spec = by_name.get(inp.name)
        if spec is None:
            continue
        for i, d in enumerate(inp.type.tensor_type.shape.dim):
            axis = spec.dims[i] if i < len(spec.dims) else None
            if not isinstance(axis, str):
                continue
            if d.dim_param:
                mapping.setdefault(d.dim_param, axis)
            elif d.HasField("dim_value"):
                notes.append(f"axis '{axis}' of input '{inp.name}' was fixed to {d.dim_value} by the exporter")
    rename_dim_params(model, mapping)
    return tuple(notes)


def rename_dim_params(model: onnx.ModelProto, mapping: dict[str, str]) -> None:
    """Replace exporter symbols (``s77``) with the user's axis names (``batch``), expressions included."""
    if not mapping:
        return
    pat = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(mapping, key=len, reverse=True)) + r")\b")

    def fix(values) -> None:
        for v in values:
            if not v.type.HasField("tensor_type"):
                continue
            for d in v.type.tensor_type.shape.dim:
                if d.dim_param:
                    d.dim_param = pat.sub(lambda m: mapping[m.group(1)], d.dim_param)

    g = model.graph
    fix(g.input)
    fix(g.output)
    fix(g.value_info)
