"""Which graph outputs depend on float16 / bfloat16 values (and so get those types' tolerances)."""

from __future__ import annotations

from typing import Any

__all__ = ["narrow_dependencies"]

# onnx.TensorProto element types of the narrow floats, loosest last
_NARROW = {10: "float16", 16: "bfloat16"}


def _looser(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return "bfloat16" if "bfloat16" in (a, b) else "float16"


def _subgraph_inputs(node: Any) -> list[str]:
    """Names a node's subgraphs (If / Loop / Scan bodies) read from the outer scope."""
    import onnx

    names: list[str] = []
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for g in graphs:
            for n in g.node:
                names.extend(n.input)
                names.extend(_subgraph_inputs(n))
    return names


def _cast_to(node: Any) -> str | None:
    if node.op_type not in ("Cast", "CastLike"):
        return None
    to = next((a.i for a in node.attribute if a.name == "to"), None)
    return None if to is None else _NARROW.get(to)


def narrow_dependencies(model: Any) -> dict[str, str | None]:
    """Graph output -> the narrowest float type among the values it is computed from, or None.

    Narrow values are float16 / bfloat16 initializers, graph inputs and ``Constant`` outputs of those
    types, and the outputs of casts to them; a node whose inputs (its subgraphs' outer-scope reads
    included) carry one passes it to all its outputs. Nodes are visited in the graph's topological order.
    """
    graph = model.graph
    narrow: dict[str, str] = {}
    for init in graph.initializer:
        if init.data_type in _NARROW:
            narrow[init.name] = _NARROW[init.data_type]
    for value in graph.input:
        t = value.type.tensor_type.elem_type if value.type.HasField("tensor_type") else 0
        if t in _NARROW:
            narrow[value.name] = _NARROW[t]
    for node in graph.node:
        found: str | None = _cast_to(node)
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value" and a.t.data_type in _NARROW:
                    found = _looser(found, _NARROW[a.t.data_type])
        for name in [*node.input, *_subgraph_inputs(node)]:
            found = _looser(found, narrow.get(name))
        if found:
            for out in node.output:
                narrow[out] = found
    return {o.name: narrow.get(o.name) for o in graph.output}
