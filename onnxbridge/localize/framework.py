"""What the PyTorch and Keras directions share: run the descent, then turn it into a :class:`Finding`
(the first divergence with its ONNX nodes and source line, the per-layer checks, the repro's data)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

import numpy as np

from ..results.localize import Divergence
from .compare import Scorer, quick_score
from .descent import CallTracer, CallTree, CallValues, Descent, descend, own_feeders
from .finding import Finding, ReproCase, layer_check
from .graph import ValueFetcher
from .origins import ModuleRef, NodeOrigin, SourceLine, value_owners
from .pairing import aligned

__all__ = ["localize_calls", "MAX_REPRO_NODES"]

MAX_REPRO_NODES = 400  # a "minimal" subgraph larger than this is no help in a bug report


def localize_calls(
    tracer: CallTracer,
    tree: CallTree,
    cmap: Mapping[ModuleRef, CallValues],
    table: Mapping[str, NodeOrigin],
    fetcher: ValueFetcher,
    feeds: Mapping[str, np.ndarray],
    scorer: Scorer,
    *,
    budget_bytes: int,
    kind: str,
    source_of: Callable[[ModuleRef], SourceLine | None] = lambda r: None,
    notes: tuple[str, ...] = (),
) -> Finding:
    """The descent over ``tree`` and its verdict as a :class:`Finding` (``kind``: module | layer)."""
    d = descend(
        tracer, cmap, fetcher, feeds, scorer, budget_bytes=budget_bytes, tree=tree, value_owner=value_owners(table)
    )
    layers = tuple(layer_check(c) for c in d.checks)
    clean = Finding(
        None,
        layers=layers,
        total=sum(1 for r in tree.calls if r in cmap),
        passes=d.passes,
        values_marked=d.values_marked,
        not_mapped=sum(1 for r in tree.calls if r not in cmap),
        notes=notes,
    )
    if d.culprit is None or d.first_failing is None:
        return clean
    ref, first = d.culprit, d.first_failing
    if ref == first.ref:
        nodes = cmap[ref].own_nodes
        bad = max(first.outputs, key=lambda x: x.score)
    else:  # the parent's inline code that fed the failing input of ``first``
        failing = [x for x in first.inputs if not x.passed]
        nodes = own_feeders([x.name for x in failing], ref, table, fetcher.index)
        bad = max(failing, key=lambda x: x.score)
    frames = [table[n].user_frame() for n in nodes if n in table]
    info = tree.calls.get(ref)
    divergence = Divergence(
        name=str(ref),
        kind=kind,
        class_name=info.class_name if info else "",
        where=d.where,
        onnx_nodes=nodes,
        score=bad.score,
        input_score=first.in_score if first.inputs else None,
        max_abs=bad.max_abs,
        call_site=next((f for f in frames if f is not None), None),
        source=source_of(ref),
        also_suspect=tuple(str(r) for r in d.also_suspect),
        candidate_value=bad.name,
        note=bad.note or None,
    )
    repro = _repro_case(d, cmap, fetcher, feeds, bad.name, outputs=ref == first.ref)
    return replace(clean, divergence=divergence, repro=repro)


def _repro_case(
    d: Descent,
    cmap: Mapping[ModuleRef, CallValues],
    fetcher: ValueFetcher,
    feeds: Mapping[str, np.ndarray],
    value: str,
    *,
    outputs: bool,
) -> ReproCase | None:
    """The ONNX nodes between the last passing values and the failing ``value``, fed with the values
    ONNX Runtime computed for them (they pass), expecting the framework's tensor (the first failing call's
    output, or, when its parent's code is to blame, its input), captured during the descent."""
    index = fetcher.index
    tensors = None if d.captured is None else (d.captured.outputs if outputs else d.captured.inputs)
    passing = {x.name for c in d.checks for x in c.outputs + c.inputs if x.passed}
    culprit = cmap.get(d.culprit) if d.culprit is not None else None
    stop = (passing | set(culprit.inputs if culprit is not None else ())) - {value}
    nodes = index.region(value, stop)
    if not tensors or not nodes or len(nodes) > MAX_REPRO_NODES:
        return None
    produced = {o for n in nodes for o in index.node_outputs[n]}
    inputs = list(
        dict.fromkeys(
            i for n in nodes for i in index.node_inputs[n] if i and i not in produced and i not in index.static
        )
    )
    got = fetcher.run(feeds, inputs + [value])
    onnx_value = got[value]
    same_size = [t for t in tensors if t.size == onnx_value.size]
    if not same_size:
        return None
    expected = min((aligned(onnx_value, t) for t in same_size), key=lambda t: quick_score(onnx_value, t))
    return ReproCase(
        fetcher.model,
        nodes,
        {i: got[i] for i in inputs},
        {value: np.ascontiguousarray(expected).astype(onnx_value.dtype, copy=False)},
        fetcher.provider,
    )
