"""The sizes an ``ExportedProgram`` is valid for: torch.export's range constraints per dynamic axis,
and the guards in the model's code that bound them.

``torch.export`` records what it assumed while tracing: ``if x.shape[1] > 24:`` exported at 8 gives the
sequence axis the range [2, 24] and the guard ``s27 <= 24`` at that line. The ONNX graph keeps the
axis symbolic, so nothing else says that it is wrong at 25.

Reads torch internals that are stable in practice but private (the ShapeEnv's ``guards``): every read
is guarded, and a failure means "unknown", never an error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..results import ExportedAxis

__all__ = ["exported_axes"]


def _bound(value: Any) -> int | None:
    """A ValueRanges bound as an int, None for infinity (``int()`` on ``int_oo`` raises in sympy)."""
    text = str(value)
    if text in ("int_oo", "oo", "-int_oo", "-oo"):
        return None
    return int(value)


def _input_names(ep: Any, arg_order: Sequence[str]) -> list[str | None]:
    """The user-facing name of each flattened user input, in placeholder order: keyword inputs by key,
    positional ones in ``arg_order``; None for leaves inside nested containers."""
    from torch.utils._pytree import tree_flatten_with_path, tree_unflatten

    spec = ep.call_spec.in_spec
    args, kwargs = tree_unflatten(list(range(spec.num_leaves)), spec)
    names: dict[int, str | None] = {}
    for i, a in enumerate(args):
        for path, leaf in tree_flatten_with_path(a)[0]:
            names[leaf] = arg_order[i] if not path and i < len(arg_order) else None
    for path, leaf in tree_flatten_with_path(kwargs)[0]:
        names[leaf] = str(getattr(path[0], "key", path[0])) if len(path) == 1 else None
    return [names.get(i) for i in range(spec.num_leaves)]


def _input_shapes(ep: Any, arg_order: Sequence[str]) -> dict[str, tuple]:
    """Input name -> the shape torch.export traced it with (ints and SymInts)."""
    import torch
    from torch.export.graph_signature import InputKind

    nodes = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    user = [s for s in ep.graph_signature.input_specs if s.kind == InputKind.USER_INPUT]
    out = {}
    for name, spec in zip(_input_names(ep, arg_order), user):
        node = nodes.get(getattr(spec.arg, "name", None))
        val = node.meta.get("val") if node is not None else None
        if name is not None and isinstance(val, torch.Tensor):
            out[name] = tuple(val.shape)
    return out


def _guards(shape_env: Any, symbols: Mapping[str, str]) -> dict[str, str]:
    """Symbol -> the first guard from the model's own code that bounds it, symbols renamed to axes:
    ``seq <= 24 at model.py:36 (if x.shape[1] > 24:)``."""
    from .torch_utils import inside, torch_dir

    own = torch_dir()
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, symbols)) + r")\b") if symbols else None
    found: dict[str, str] = {}
    for guard in getattr(shape_env, "guards", ()):
        frame = getattr(getattr(guard, "sloc", None), "framework_loc", None)
        filename = getattr(frame, "filename", None)
        if pattern is None or frame is None or not filename or inside(filename, own):
            continue
        expr = str(guard.expr)
        if not any(op in expr for op in ("<", ">")):
            continue
        text = pattern.sub(lambda m: symbols[m.group(1)], expr)
        code = (getattr(frame, "line", None) or "").strip()
        where = f"{os.path.basename(filename)}:{frame.lineno}" + (f" ({code})" if code else "")
        for sym in getattr(guard.expr, "free_symbols", ()):
            found.setdefault(str(sym), f"{text} at {where}")
    return found


def exported_axes(
    ep: Any, arg_order: Sequence[str], dynamic: Mapping[str, Mapping[int, str]]
) -> tuple[ExportedAxis, ...]:
    """The range torch.export recorded for each named dynamic axis (intersected over the inputs that
    share the axis name), with the guard that bounds it when the model's code made one. Empty when the
    program cannot be read."""
    import torch

    try:
        shapes = _input_shapes(ep, arg_order)
        constraints = {str(k): v for k, v in ep.range_constraints.items()}
        ranges: dict[str, tuple[int, int | None]] = {}
        symbols: dict[str, str] = {}
        env = None
        for name, axes in dynamic.items():
            for ax, axis in axes.items():
                dim = shapes.get(name, ())[ax] if ax < len(shapes.get(name, ())) else None
                if isinstance(dim, torch.SymInt):
                    env = env or dim.node.shape_env
                    sym = str(dim.node.expr)
                    vr = constraints.get(sym)
                    if vr is None:
                        continue
                    lo, hi = int(vr.lower), _bound(vr.upper)
                    symbols.setdefault(sym, axis)
                elif isinstance(dim, int):
                    lo, hi = dim, dim
                else:
                    continue
                old_lo, old_hi = ranges.get(axis, (lo, hi))
                ranges[axis] = (max(lo, old_lo), hi if old_hi is None else old_hi if hi is None else min(hi, old_hi))
        guards = _guards(env, symbols) if env is not None else {}
    except Exception:  # private internals moved: the ranges are unknown, not wrong
        return ()
    by_axis = {axis: guards[sym] for sym, axis in symbols.items() if sym in guards}
    return tuple(ExportedAxis(axis, lo, hi, by_axis.get(axis)) for axis, (lo, hi) in ranges.items())
