"""Where each ONNX node came from: the module call (scope and call index), its class, its source line.

Two readers, one result type (:class:`NodeOrigin`):

* the dynamo exporter's node metadata (see :mod:`.metadata`), with onnxbridge's stamped call indices
  when present (``calls_known``);
* the TorchScript exporter's node names: ``/encoder/layer.1/attention/self/query/MatMul``; a repeated
  call gets ``_N`` on its scope segment (``/shared_1/Gemm``). No source location there: the class's
  ``forward`` definition is all that can be named (:func:`module_source`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..results.localize import SourceLine
from .metadata import KEY_CALLS, KEY_CLASSES, KEY_SCOPES, KEY_STACK, props, str_list

if TYPE_CHECKING:
    import onnx

__all__ = [
    "SourceLine",
    "in_torch",
    "ModuleRef",
    "NodeOrigin",
    "parse_stack_trace",
    "dynamo_origin",
    "torchscript_origin",
    "origins",
    "scope_prefix",
    "module_source",
    "value_owners",
]


def in_torch(frame: SourceLine) -> bool:
    """A frame inside the torch package (``nn.Linear.forward``, ``F.linear``) or generated code. Frames in
    transformers and the like are user code: the line a user wants to see."""
    f = frame.file.replace("\\", "/")
    return f.startswith("<") or "-packages/torch/" in f


@dataclass(frozen=True, order=True)
class ModuleRef:
    """One call of one module or layer: ``shared`` call 1 is ``ModuleRef('shared', 1)``; the root is ``''``."""

    qualname: str
    call: int = 0

    def __str__(self) -> str:
        if not self.qualname:
            return "<root>"
        return self.qualname + (f"@{self.call}" if self.call else "")

    @staticmethod
    def parse(text: str) -> ModuleRef:
        """``'shared@1'`` -> ``ModuleRef('shared', 1)``."""
        name, sep, idx = text.rpartition("@")
        if sep and idx.isdigit():
            return ModuleRef(name, int(idx))
        return ModuleRef(text, 0)


@dataclass(frozen=True)
class NodeOrigin:
    """What the exporter says about one ONNX node."""

    node: str
    op_type: str
    outputs: tuple[str, ...]
    stack: tuple[ModuleRef, ...]  # outermost first, the root left out
    classes: tuple[str, ...] = ()  # class of each stack entry when known
    frames: tuple[SourceLine, ...] = field(default=(), repr=False)
    calls_known: bool = True  # False: dynamo metadata without stamped call indices (all taken as call 0)

    @property
    def module(self) -> ModuleRef:
        """The innermost module call (the root when the node belongs to no sub-module)."""
        return self.stack[-1] if self.stack else ModuleRef("")

    def user_frame(self) -> SourceLine | None:
        """The innermost frame outside torch: the line that called the op (or the torch.nn module)."""
        for fr in reversed(self.frames):
            if not in_torch(fr):
                return fr
        return None


_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)\n(?:[ \t]+(.*))?')


def parse_stack_trace(text: str) -> tuple[SourceLine, ...]:
    """``pkg.torch.onnx.stack_trace`` (``traceback.format_list`` text, outermost first) -> frames."""
    return tuple(
        SourceLine(m.group(1), int(m.group(2)), (m.group(4) or "").strip(), m.group(3))
        for m in _FRAME.finditer(text or "")
    )


def dynamo_origin(node: onnx.NodeProto) -> NodeOrigin | None:
    """Origin from the dynamo exporter's metadata (None when the node carries none)."""
    meta = props(node)
    scopes = str_list(meta.get(KEY_SCOPES))
    if scopes is None:
        return None
    classes = str_list(meta.get(KEY_CLASSES)) or []
    module_names = scopes[1:-1]  # ['', 'blocks.0', 'blocks.0.fc', 'linear']: root and FX node left out
    calls = str_list(meta.get(KEY_CALLS))
    if calls is not None and len(calls) == len(module_names) + 1:
        stack, known = tuple(ModuleRef.parse(c) for c in calls[1:]), True
    else:
        stack, known = tuple(ModuleRef(n, 0) for n in module_names), False
    return NodeOrigin(
        node=node.name,
        op_type=node.op_type,
        outputs=tuple(node.output),
        stack=stack,
        classes=tuple(c.rsplit(".", 1)[-1] for c in classes[1:-1]) if len(classes) == len(scopes) else (),
        frames=parse_stack_trace(meta.get(KEY_STACK, "")),
        calls_known=known,
    )


_REPEAT = re.compile(r"^(.*)_(\d+)$")


def torchscript_origin(
    node: onnx.NodeProto, module_names: set[str] | None = None, prefix: str = ""
) -> NodeOrigin | None:
    """Origin from a TorchScript node name ``/encoder/layer.1/attention/self/query/MatMul``.

    ``shared_1`` is call 1 of ``shared`` unless ``shared_1`` is itself a module (``module_names``: the
    model's ``named_modules()`` names). ``prefix``: a wrapper's attribute every name starts with
    (onnxbridge's keyword adapter: ``inner``), stripped.
    """
    name = node.name
    if not name.startswith("/"):
        return None
    segments = name.split("/")[1:-1]  # the last segment is the op ("MatMul", "Constant_3")
    if prefix:
        if not segments or segments[0] != prefix:
            return NodeOrigin(name, node.op_type, tuple(node.output), ())
        segments = segments[1:]
    stack: list[ModuleRef] = []
    path = ""
    for seg in segments:
        call = 0
        candidate = f"{path}.{seg}" if path else seg
        m = _REPEAT.match(seg)
        if m and (module_names is None or candidate not in module_names):
            base = f"{path}.{m.group(1)}" if path else m.group(1)
            if module_names is None or base in module_names:
                candidate, call = base, int(m.group(2))
        path = candidate
        stack.append(ModuleRef(path, call))
    return NodeOrigin(name, node.op_type, tuple(node.output), tuple(stack))


def scope_prefix(model: onnx.ModelProto, module_names: set[str]) -> str:
    """``inner`` when every scoped TorchScript node name starts with ``/inner/`` and the model has no
    module of that name: onnxbridge's keyword adapter wrapped it for export."""
    scoped = [n.name for n in model.graph.node if n.name.startswith("/") and n.name.count("/") > 1]
    if scoped and all(s.startswith("/inner/") for s in scoped) and "inner" not in module_names:
        return "inner"
    return ""


def origins(model: onnx.ModelProto, module_names: Iterable[str] | None = None) -> dict[str, NodeOrigin]:
    """Origin of every top-level node that has one, keyed by node name (dynamo metadata first)."""
    names = set(module_names) if module_names is not None else None
    prefix = scope_prefix(model, names or set())
    out: dict[str, NodeOrigin] = {}
    for node in model.graph.node:
        origin = dynamo_origin(node) or torchscript_origin(node, names, prefix)
        if origin is not None:
            out[node.name] = origin
    return out


def module_source(module: Any) -> SourceLine | None:
    """file:line of a module class's ``forward`` (the TorchScript route has nothing better)."""
    import inspect

    cls = type(module)
    try:
        fwd = cls.forward
        file = inspect.getsourcefile(fwd) or inspect.getfile(cls)
        lines, line = inspect.getsourcelines(fwd)
    except (TypeError, OSError, AttributeError):
        return None
    return SourceLine(file, line, lines[0].strip() if lines else "", f"{cls.__qualname__}.forward")


def value_owners(table: Mapping[str, NodeOrigin]) -> dict[str, ModuleRef]:
    """ONNX value -> the innermost call of the node producing it (``ModuleRef('')``: the root's own code)."""
    return {o: org.module for org in table.values() for o in org.outputs}
