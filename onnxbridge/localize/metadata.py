"""What exporters write on ONNX nodes about their origin, and keeping it through graph rewrites.

The dynamo exporter (``torch.onnx.export(..., dynamo=True)``, torch 2.13) writes five
``metadata_props`` on every node: ``namespace``, ``pkg.torch.onnx.name_scopes`` (module scopes, last
item the FX node name), ``pkg.torch.onnx.class_hierarchy``, ``pkg.torch.onnx.fx_node`` and
``pkg.torch.onnx.stack_trace`` (the Python lines that made the node). Two things are missing or lost:

* the call index of a module called twice: ``name_scopes`` says ``shared`` for both calls, while the
  ExportedProgram's ``nn_module_stack`` keys carry it (``L__self__shared@1``).
  :func:`stamp_module_calls` writes it on each node as ``pkg.onnxbridge.module_calls``, in JSON as all our
  own metadata (``onnxio.write_meta``: ``["", "blocks.0", "shared@1"]``, root first, ``@N`` only for N > 0),
  so a saved file is enough (files written before held a Python list literal, which still reads);
* onnxsim (0.8.1) and ONNX Runtime's offline optimiser drop every node's ``metadata_props`` while
  keeping node names: :func:`carry_metadata` copies them back after each rewrite.

Nothing here imports torch; the ExportedProgram is read duck-typed.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from ..onnxio import decode_meta, write_meta

if TYPE_CHECKING:
    import onnx

__all__ = [
    "KEY_SCOPES",
    "KEY_CLASSES",
    "KEY_FX_NODE",
    "KEY_STACK",
    "KEY_CALLS",
    "props",
    "str_list",
    "stamp_module_calls",
    "carry_metadata",
]

KEY_SCOPES = "pkg.torch.onnx.name_scopes"
KEY_CLASSES = "pkg.torch.onnx.class_hierarchy"
KEY_FX_NODE = "pkg.torch.onnx.fx_node"
KEY_STACK = "pkg.torch.onnx.stack_trace"
KEY_CALLS = "pkg.onnxbridge.module_calls"


def props(node: onnx.NodeProto) -> dict[str, str]:
    """A node's ``metadata_props`` as a dict."""
    return {p.key: p.value for p in node.metadata_props}


def str_list(text: str | None) -> list[str] | None:
    """A list of strings from a node's metadata value; None when it holds none.

    Our own keys are JSON (``["", "encoder"]``); torch's exporter writes ``repr(list)`` (``"['', 'encoder']"``),
    as onnxbridge did before. That form is parsed, never evaluated: only a flat list of string literals is
    read, anything else (a call, a name, a number, a nested list) is not a list of strings.
    """
    if not text:
        return None
    value = decode_meta(text)
    if value is None:
        value = _python_str_list(text)
    return list(value) if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def _python_str_list(text: str) -> list[str] | None:
    """``"['', 'encoder']"`` -> ``['', 'encoder']``, from the syntax tree alone."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(tree.body, ast.List):
        return None
    items = [e.value for e in tree.body.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return items if len(items) == len(tree.body.elts) else None


def _module_stacks(exported_program: Any) -> dict[str, list[str]]:
    """FX node name -> its module stack with call indices (``['blocks.0', 'shared@1']``)."""
    stacks: dict[str, list[str]] = {}
    for fx in exported_program.graph.nodes:
        nms = fx.meta.get("nn_module_stack")
        if not nms:
            continue
        entry = []
        for key, value in nms.items():
            qual = value[0] if isinstance(value, tuple) else str(value)
            _, sep, idx = str(key).rpartition("@")
            entry.append(f"{qual}@{idx}" if sep and idx.isdigit() and idx != "0" else qual)
        stacks[fx.name] = entry
    return stacks


def stamp_module_calls(model: onnx.ModelProto, exported_program: Any) -> int:
    """Write ``pkg.onnxbridge.module_calls`` on every dynamo-exported node, in place; returns how many.

    ``exported_program`` is ``ONNXProgram.exported_program`` (the decomposed program the graph was
    translated from: its FX node names are the ``name_scopes`` tails). Never raises: a program it
    cannot read stamps nothing, and localisation then leaves shared modules out.
    """
    try:
        stacks = _module_stacks(exported_program)
    except Exception:  # an exporter version with other metadata: nothing to stamp
        return 0
    stamped = 0
    for node in model.graph.node:
        scopes = str_list(props(node).get(KEY_SCOPES))
        if not scopes or scopes[-1] not in stacks:
            continue
        entry = stacks[scopes[-1]]
        if len(entry) != len(scopes) - 1:
            continue
        write_meta(node.metadata_props, KEY_CALLS, entry)
        stamped += 1
    return stamped


_LAYOUT_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Cast"})


def carry_metadata(source: onnx.ModelProto, target: onnx.ModelProto) -> int:
    """Copy node ``metadata_props`` from ``source`` onto the matching bare nodes of ``target``, in place.

    A node matches by name, then by the name before its first ``/`` (ONNX Runtime names a fused node
    after the node it started from: ``node_MatMul_63/MatMulAddFusion``), then by an output name, then by
    a weight only one source node read (onnxsim turns a 3-D ``MatMul`` + ``Add`` into ``Reshape`` +
    ``Gemm`` + ``Reshape`` under new names: the ``Gemm`` still reads the Linear's weight). Last, a bare
    layout op (``Reshape``, ``Transpose``...) feeding a single node takes that node's metadata (not its
    producer's: a parent's transpose of a child's output must not become the child's output). Nodes made
    from nothing (``SkipLayerNormalization``) stay bare. Returns how many nodes got metadata.
    """
    by_name = {n.name: n for n in source.graph.node if n.name and len(n.metadata_props)}
    by_output = {o: n for n in source.graph.node if len(n.metadata_props) for o in n.output if o}
    if not by_output:
        return 0
    inits = {i.name for i in source.graph.initializer}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in source.graph.node:
        for i in set(n.input) & inits:
            readers.setdefault(i, []).append(n)
    by_weight = {i: ns[0] for i, ns in readers.items() if len(ns) == 1 and len(ns[0].metadata_props)}
    copied = 0
    for node in target.graph.node:
        if len(node.metadata_props):
            continue
        src = (
            by_name.get(node.name)
            or by_name.get(node.name.split("/")[0])
            or next((by_output[o] for o in node.output if o in by_output), None)
            or next((by_weight[i] for i in node.input if i in by_weight), None)
        )
        if src is not None:
            node.metadata_props.extend(src.metadata_props)
            copied += 1
    return copied + _carry_to_layout_ops(target)


def _carry_to_layout_ops(model: onnx.ModelProto) -> int:
    """Bare layout ops feeding one node take its metadata (repeated, for chains of them)."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    copied, changed = 0, True
    while changed:
        changed = False
        for node in model.graph.node:
            if len(node.metadata_props) or node.op_type not in _LAYOUT_OPS:
                continue
            after = {id(c): c for o in node.output for c in consumers.get(o, ())}
            src = next(iter(after.values())) if len(after) == 1 else None
            if src is not None and len(src.metadata_props):
                node.metadata_props.extend(src.metadata_props)
                copied += 1
                changed = True
    return copied
