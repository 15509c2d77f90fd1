"""``decoder_model_merged.onnx`` in optimum's layout: one graph whose ``If`` node on a ``use_cache_branch``
bool input runs the first-step decoder (``False``) or the decoder with past (``True``), both branches reading
one copy of the weights.

Inputs are the union of the two decoders' (``encoder_attention_mask``, ``input_ids``,
``encoder_hidden_states``, ``past_key_values.*``) plus ``use_cache_branch``; every past input has a dynamic
length axis, so the first step feeds empty pasts (``[batch, heads, 0, head_dim]``) as optimum's runtime does.
Outputs are the first-step decoder's; the with-past branch returns empty tensors for the cross-attention
cache it does not recompute (the caller keeps the first step's)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConversionError

__all__ = ["MERGED", "MergedDecoder", "merge_decoders"]

MERGED = "decoder_model_merged.onnx"
_SMALL_INT = (6, 7)  # int32, int64: 0-d and 1-d ones stay in their branch (shape constants), as optimum keeps them


@dataclass(frozen=True)
class MergedDecoder:
    """The merged file, how many weights the two branches share, and its size against the two inputs."""

    path: Path
    shared: int
    bytes: int
    inputs_bytes: int


def _large(t: Any) -> bool:
    return len(t.dims) > 1 or (len(t.dims) == 1 and t.data_type not in _SMALL_INT)


def _graphs(graph: Any) -> Iterator[Any]:
    """``graph`` and every subgraph below it."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                yield from _graphs(attr.g)
            for g in attr.graphs:
                yield from _graphs(g)


def _rename_uses(graph: Any, names: dict[str, str]) -> None:
    for g in _graphs(graph):
        for node in g.node:
            for i, name in enumerate(node.input):
                if name in names:
                    node.input[i] = names[name]


def _dynamic_length(value: Any, axis: int, name: str) -> Any:
    """A copy of a value info whose ``axis`` is the named dynamic dim ``name``."""
    out = type(value)()
    out.CopyFrom(value)
    dims = out.type.tensor_type.shape.dim
    if len(dims) > axis and not dims[axis].dim_param:
        dims[axis].Clear()
        dims[axis].dim_param = name
    return out


def _empty_output(value: Any, like: Any, index: int) -> Any:
    """A Constant node giving ``value`` as an empty tensor shaped as ``like`` (the matching past input,
    whose heads and head size are fixed), its dynamic axes 0."""
    import onnx

    dims = [d.dim_value if d.HasField("dim_value") else 0 for d in like.type.tensor_type.shape.dim]
    elem = value.type.tensor_type.elem_type
    tensor = onnx.helper.make_tensor(f"{value.name}_empty", elem, dims, [])
    return onnx.helper.make_node("Constant", [], [value.name], name=f"onnxbridge::empty_{index}", value=tensor)


def merge_decoders(decoder: str | Path, with_past: str | Path, out: str | Path) -> MergedDecoder:
    """Write the merged decoder of ``decoder`` (first step) and ``with_past`` (later steps) to ``out``."""
    import onnx

    paths = (Path(decoder), Path(with_past))
    first, later = (onnx.load(str(p)) for p in paths)
    opsets = [{o.domain: o.version for o in m.opset_import} for m in (first, later)]
    if opsets[0].get("", 0) != opsets[1].get("", 0):
        raise ConversionError(
            f"cannot merge {paths[0].name} (opset {opsets[0].get('')}) and {paths[1].name} (opset {opsets[1].get('')})",
            "export both decoders at one --opset",
        )
    later_outputs = {o.name for o in later.graph.output}
    extra = [o for o in first.graph.output if o.name not in later_outputs]
    if not later_outputs <= {o.name for o in first.graph.output} or any(".encoder." not in o.name for o in extra):
        raise ConversionError(
            f"{paths[1].name}'s outputs are not the first-step decoder's less its cross-attention cache",
            "re-export the folder: both decoders come from one convert",
        )

    # one copy of each large weight, under a name no branch uses for anything else
    names: dict[tuple[int, tuple[int, ...], str], str] = {}
    weights, shared = [], 0
    for model in (first, later):
        renames: dict[str, str] = {}
        small = []
        for t in model.graph.initializer:
            if not _large(t):
                small.append(t)
                continue
            data = onnx.numpy_helper.to_array(t)
            key = (t.data_type, tuple(t.dims), hashlib.sha256(data.tobytes()).hexdigest())
            if key in names:
                shared += 1
            else:
                names[key] = f"merged::{len(names)}::{t.name}"
                weights.append(t)
            renames[t.name] = names[key]
            t.name = names[key]
        _rename_uses(model.graph, renames)
        del model.graph.initializer[:]
        model.graph.initializer.extend(small)

    past_inputs = {v.name: v for v in later.graph.input}
    fill = [
        _empty_output(o, past_inputs.get(o.name.replace("present.", "past_key_values."), o), i)
        for i, o in enumerate(extra)
    ]
    by_name = {o.name: o for o in later.graph.output}
    no_past = onnx.helper.make_graph(
        list(first.graph.node), "no_past", [], list(first.graph.output), list(first.graph.initializer)
    )
    with_past = onnx.helper.make_graph(
        [*later.graph.node, *fill],
        "with_past",
        [],
        [by_name.get(o.name) or o for o in first.graph.output],
        list(later.graph.initializer),
    )
    flag = onnx.helper.make_tensor_value_info("use_cache_branch", onnx.TensorProto.BOOL, [1])
    branch = onnx.helper.make_node(
        "If",
        ["use_cache_branch"],
        [o.name for o in first.graph.output],
        name="optimum::if",
        then_branch=with_past,
        else_branch=no_past,
    )
    inputs, seen = [], set()
    for model in (first, later):
        for v in model.graph.input:
            if v.name in seen:
                continue
            seen.add(v.name)
            if v.name.startswith("past_key_values."):
                side = "encoder_sequence_length_out" if ".encoder." in v.name else "past_decoder_sequence_length"
                v = _dynamic_length(v, 2, side)
            inputs.append(v)
    outputs = [
        _dynamic_length(o, 2, "encoder_sequence_length_out") if ".encoder." in o.name else o for o in first.graph.output
    ]
    graph = onnx.helper.make_graph([branch], "merged", [*inputs, flag], outputs, weights)
    functions = {(f.domain, f.name, f.overload): f for m in (first, later) for f in m.functions}
    imports = {**opsets[1], **opsets[0]}
    merged = onnx.helper.make_model(
        graph,
        producer_name="onnxbridge",
        opset_imports=[onnx.helper.make_opsetid(d, v) for d, v in imports.items()],
        functions=list(functions.values()),
    )
    merged.ir_version = max(first.ir_version, later.ir_version)
    out = Path(out)
    onnx.save(merged, str(out))
    return MergedDecoder(out, shared, out.stat().st_size, sum(p.stat().st_size for p in paths))
