"""Pair the values of two ONNX models (original vs simplified, fp32 vs fp16, another exporter's graph).

By value name; then by producing node name (same op, outputs by position); then by structure (same op,
attributes equal up to schema defaults, over already-paired inputs and same-named weights), repeated.
When under half of A's values pair by name, :func:`pair_numerically` runs both models once and pairs
still-unpaired values of equal shape whose contents agree within tolerance, then structure pairing
continues from them. Values that diverged stay unpaired by construction, which is fine: the root is
found on the values paired structurally around it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .compare import Scorer, quick_score
from .graph import GraphIndex, ValueFetcher

if TYPE_CHECKING:
    import onnx

__all__ = ["ValuePair", "match_values", "pair_numerically"]

NUMERIC_PAIRING_LIMIT = 2048  # unpaired values of both models marked at once; above: names and structure only


@dataclass(frozen=True)
class ValuePair:
    a: str
    b: str
    how: str  # input | output | name | node | structure | numeric


def _defaults(node: onnx.NodeProto) -> dict[str, object]:
    import onnx
    from onnx import helper

    try:
        schema = onnx.defs.get_schema(node.op_type, domain=node.domain or "")
    except Exception:  # an op of a domain onnx does not know (com.microsoft): no defaults
        return {}
    return {
        name: helper.get_attribute_value(at.default_value)
        for name, at in schema.attributes.items()
        if at.default_value is not None and at.default_value.type
    }


_AttrValue = bytes | str | int | float | tuple[bytes | str | int | float, ...]


def _attrs_key(node: onnx.NodeProto) -> tuple[tuple[str, _AttrValue], ...]:
    """The node's attributes, schema defaults left out (``Gemm(alpha=1.0, transB=1)`` == ``Gemm(transB=1)``)."""
    from onnx import helper

    defaults = _defaults(node)
    out: list[tuple[str, _AttrValue]] = []
    for at in sorted(node.attribute, key=lambda x: x.name):
        v = helper.get_attribute_value(at)
        if at.name in defaults and defaults[at.name] == v:
            continue
        if isinstance(v, (bytes, str, int, float)):
            out.append((at.name, v))
        elif isinstance(v, list) and all(isinstance(x, (bytes, str, int, float)) for x in v):
            out.append((at.name, tuple(v)))
        else:
            out.append((at.name, "?"))
    return tuple(out)


def _pair_structure(a: onnx.ModelProto, b: onnx.ModelProto, ia: GraphIndex, pairs: dict[str, ValuePair]) -> int:
    """Same op over already-paired inputs -> its outputs pair; in place; returns how many pairs it added."""
    before = len(pairs)
    by_sig: dict[tuple, onnx.NodeProto] = {}
    paired_b = {p.b for p in pairs.values()}
    for nb in b.graph.node:
        by_sig.setdefault((nb.op_type, _attrs_key(nb), tuple(nb.input)), nb)
    for na in a.graph.node:
        if all(not o or o in pairs or o in ia.static for o in na.output):
            continue
        ins: list[str] = []
        nb = None
        for i in na.input:
            if not i or i in ia.static:
                ins.append(i)  # same-named weight, or an absent optional input
            elif i in pairs:
                ins.append(pairs[i].b)
            else:
                break
        else:  # every input has its counterpart in b
            nb = by_sig.get((na.op_type, _attrs_key(na), tuple(ins)))
        if nb is None or len(nb.output) != len(na.output):
            continue
        for x, y in zip(na.output, nb.output):
            if x and x not in pairs and y not in paired_b:
                pairs[x] = ValuePair(x, y, "structure")
                paired_b.add(y)
    return len(pairs) - before


def _sorted(pairs: Mapping[str, ValuePair], ia: GraphIndex) -> list[ValuePair]:
    pos = {v: k for k, v in enumerate(ia.computed())}
    return sorted((p for p in pairs.values() if p.a in pos), key=lambda p: pos[p.a])


def match_values(a: onnx.ModelProto, b: onnx.ModelProto, ia: GraphIndex, ib: GraphIndex) -> list[ValuePair]:
    """Computed values of A paired with values of B by name, node and structure, in A's order."""
    nodes_b = {n.name: n for n in b.graph.node}
    nodes_a = {n.name: n for n in a.graph.node}
    pairs: dict[str, ValuePair] = {}
    for x, y in zip(ia.inputs, ib.inputs):  # graph inputs and outputs pair by position
        pairs[x] = ValuePair(x, y, "input")
    for x, y in zip(ia.outputs, ib.outputs):
        pairs[x] = ValuePair(x, y, "output")
    for v in ia.computed():
        if v in pairs:
            continue
        if v in ib.producer and v not in ib.static:
            pairs[v] = ValuePair(v, v, "name")
            continue
        na, nb = nodes_a.get(ia.producer[v]), nodes_b.get(ia.producer[v])
        if na is not None and nb is not None and na.op_type == nb.op_type and len(na.output) == len(nb.output):
            pairs[v] = ValuePair(v, nb.output[list(na.output).index(v)], "node")
    while _pair_structure(a, b, ia, pairs):
        pass
    return _sorted(pairs, ia)


def pair_numerically(
    fa: ValueFetcher,
    fb: ValueFetcher,
    feeds: Mapping[str, np.ndarray],
    feeds_b: Mapping[str, np.ndarray],
    pairs: Sequence[ValuePair],
    scorer: Scorer,
) -> list[ValuePair]:
    """Pair the still-unpaired values of A with unpaired values of B of equal shape whose contents agree
    within tolerance; one marked run of each model. Skipped above :data:`NUMERIC_PAIRING_LIMIT` values."""
    ia, ib = fa.index, fb.index
    have = {p.a: p for p in pairs}
    used_b = {p.b for p in pairs}
    un_a = [v for v in ia.computed() if v not in have]
    un_b = [v for v in ib.computed() if v not in used_b]
    if not un_a or not un_b or len(un_a) + len(un_b) > NUMERIC_PAIRING_LIMIT:
        return list(pairs)
    va, vb = fa.run(feeds, un_a), fb.run(feeds_b, un_b)
    by_shape: dict[tuple, list[str]] = {}
    for v in un_b:
        by_shape.setdefault((vb[v].shape, vb[v].dtype.kind == "f"), []).append(v)
    out = dict(have)
    for v in un_a:
        cands = [c for c in by_shape.get((va[v].shape, va[v].dtype.kind == "f"), []) if c not in used_b]
        if not cands:
            continue
        best = min(cands, key=lambda c: quick_score(va[v], vb[c]))
        if scorer.diff(v, va[v], vb[best]).passed:
            out[v] = ValuePair(v, best, "numeric")
            used_b.add(best)
    while _pair_structure(fa.model, fb.model, ia, out):
        pass
    return _sorted(out, ia)
