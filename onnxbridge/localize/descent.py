"""The framework-neutral search: call tree, call -> ONNX values, budgeted descent, first diverging call.

A framework adapter is a :class:`CallTracer`: it runs the model once on the case's inputs and reports
every module / layer call as it starts and as it ends, its tensors handed over *on demand* (a thunk,
so calls nobody watches cost nothing). PyTorch: forward hooks (:mod:`.torch_side`); Keras: a wrapped
``layer.call`` (:mod:`.keras_side`).

:func:`descend`:

1. :func:`call_tree`: one run records the calls (parent, depth, completion order, bytes in and out).
2. Each pass watches the calls chosen breadth-first below the current suspect (the top on pass 1),
   whole tree levels while their bytes fit the budget (one level at least), marks their ONNX values,
   runs ONNX Runtime once, then runs the model once comparing each watched call *while it happens*
   (an in-place op after the call cannot change what was compared; nothing is kept but the scores).
3. The first failing call in completion order is the new suspect; the next pass watches its subtree.
   It stops when the suspect's subtree has been watched.
4. Verdict: the suspect's inputs pass -> its own ops; an input fails and the parent's own nodes
   produced it -> the parent's code just before the call.

Memory: the marked values of one pass and one model run; passes <= depth of the call tree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .compare import Scorer, TensorDiff
from .graph import GraphIndex, ValueFetcher
from .origins import ModuleRef, NodeOrigin
from .pairing import pair_tensors

__all__ = [
    "Arrays",
    "CallTracer",
    "CallInfo",
    "CallTree",
    "CallValues",
    "CallCheck",
    "Captured",
    "Descent",
    "call_tree",
    "map_calls",
    "descend",
    "own_feeders",
]

Arrays = Callable[[], list[np.ndarray]]
OnStart = Callable[[ModuleRef, str, Arrays, int], None]  # call, class name, its inputs, their bytes
OnEnd = Callable[[ModuleRef, Arrays, int], None]  # call, its outputs, their bytes


class CallTracer(Protocol):
    def run(self, on_start: OnStart, on_end: OnEnd) -> None:
        """Run the model once on the case's inputs, reporting every call's start and end."""


@dataclass(frozen=True)
class CallInfo:
    ref: ModuleRef
    class_name: str
    parent: ModuleRef | None
    depth: int
    order: int  # completion (post-)order
    in_bytes: int
    out_bytes: int


@dataclass(frozen=True)
class CallTree:
    calls: Mapping[ModuleRef, CallInfo]
    children: Mapping[ModuleRef, tuple[ModuleRef, ...]]  # in call order

    def subtree(self, root: ModuleRef) -> list[ModuleRef]:
        """Every call below ``root``, breadth first."""
        out, queue = [], list(self.children.get(root, ()))
        while queue:
            r = queue.pop(0)
            out.append(r)
            queue.extend(self.children.get(r, ()))
        return out

    def ancestors(self, ref: ModuleRef) -> set[ModuleRef]:
        out: set[ModuleRef] = set()
        p = self.calls[ref].parent
        while p is not None:
            out.add(p)
            p = self.calls[p].parent
        return out


def call_tree(tracer: CallTracer) -> CallTree:
    """One run of the model, recording every call."""
    calls: dict[ModuleRef, CallInfo] = {}
    children: dict[ModuleRef, list[ModuleRef]] = {}
    stack: list[tuple[ModuleRef, str, ModuleRef | None, int, int]] = []

    def on_start(ref: ModuleRef, cls: str, _ins: Arrays, in_bytes: int) -> None:
        parent = stack[-1][0] if stack else None
        if parent is not None:
            children.setdefault(parent, []).append(ref)
        stack.append((ref, cls, parent, len(stack), in_bytes))

    def on_end(ref: ModuleRef, _outs: Arrays, out_bytes: int) -> None:
        r, cls, parent, depth, in_bytes = stack.pop()
        calls[r] = CallInfo(r, cls, parent, depth, len(calls), in_bytes, out_bytes)

    tracer.run(on_start, on_end)
    return CallTree(calls, {k: tuple(v) for k, v in children.items()})


@dataclass(frozen=True)
class CallValues:
    """The ONNX side of one call."""

    ref: ModuleRef
    nodes: tuple[str, ...]  # every member node (its children's included), topological
    own_nodes: tuple[str, ...]  # nodes whose innermost call is this one
    outputs: tuple[str, ...]  # produced inside, used outside (or graph outputs)
    inputs: tuple[str, ...]  # read inside, produced outside (no weights, no constants)


def map_calls(
    index: GraphIndex,
    table: Mapping[str, NodeOrigin],
    preferred_outputs: Mapping[ModuleRef, Sequence[str]] | None = None,
) -> dict[ModuleRef, CallValues]:
    """Call -> its ONNX nodes and boundary values, from the node origins.

    ``preferred_outputs``: output values the framework itself named (Keras: the TF tensor names recorded
    at trace time), put first when they exist in the graph.
    """
    members: dict[ModuleRef, list[str]] = {}
    own: dict[ModuleRef, list[str]] = {}
    for name in index.order:
        org = table.get(name)
        if org is None:
            continue
        for ref in org.stack:
            members.setdefault(ref, []).append(name)
        if org.stack:
            own.setdefault(org.stack[-1], []).append(name)
    graph_outputs = set(index.outputs)
    out: dict[ModuleRef, CallValues] = {}
    for ref, nodes in members.items():
        inside = set(nodes)
        produced = [o for n in nodes for o in index.node_outputs[n]]
        produced_set = set(produced)
        outputs = [
            v
            for v in produced
            if v not in index.static
            and (v in graph_outputs or any(c not in inside for c in index.consumers.get(v, ())))
        ]
        known = [v for v in (preferred_outputs or {}).get(ref, ()) if v in index.producer]
        if known:
            outputs = known + [v for v in outputs if v not in known]
        inputs = dict.fromkeys(
            i for n in nodes for i in index.node_inputs[n] if i and i not in produced_set and i not in index.static
        )
        out[ref] = CallValues(ref, tuple(nodes), tuple(own.get(ref, ())), tuple(outputs), tuple(inputs))
    return out


@dataclass(frozen=True)
class CallCheck:
    """One call compared: its outputs (and inputs, until a call failed) against the ONNX values."""

    ref: ModuleRef
    class_name: str
    depth: int
    order: int
    outputs: tuple[TensorDiff, ...]
    inputs: tuple[TensorDiff, ...]
    unpaired_outputs: int = 0

    @property
    def out_score(self) -> float:
        return max((d.score for d in self.outputs), default=float("nan"))

    @property
    def in_score(self) -> float:
        return max((d.score for d in self.inputs), default=0.0)

    @property
    def failed(self) -> bool:
        return bool(self.outputs) and self.out_score > 1.0


@dataclass(frozen=True)
class Captured:
    """Copies of the first failing call's tensors in a pass (for the repro): its outputs, and its inputs
    when one of them failed already (the parent's code is to blame then)."""

    ref: ModuleRef
    outputs: tuple[np.ndarray, ...]
    inputs: tuple[np.ndarray, ...] | None = None


def _compare_pass(
    tracer: CallTracer,
    tree: CallTree,
    cmap: Mapping[ModuleRef, CallValues],
    watched: Sequence[ModuleRef],
    values: Mapping[str, np.ndarray],
    scorer: Scorer,
) -> tuple[dict[ModuleRef, CallCheck], Captured | None]:
    watch = set(watched)
    results: dict[ModuleRef, CallCheck] = {}
    pending: dict[ModuleRef, tuple[TensorDiff, ...]] = {}
    bad_inputs: dict[ModuleRef, tuple[np.ndarray, ...]] = {}  # calls still running whose inputs failed
    captured: Captured | None = None

    def on_start(ref: ModuleRef, _cls: str, ins: Arrays, _n: int) -> None:
        if ref in watch and captured is None:  # input scores only matter up to the first failing call
            arrays = ins()
            pending[ref] = pair_tensors(arrays, {n: values[n] for n in cmap[ref].inputs if n in values}, scorer).diffs
            if any(not d.passed for d in pending[ref]):
                bad_inputs[ref] = tuple(a.copy() for a in arrays)  # copies: in-place ops must not reach them

    def on_end(ref: ModuleRef, outs: Arrays, _n: int) -> None:
        nonlocal captured
        if ref not in watch:
            return
        arrays = outs()
        paired = pair_tensors(arrays, {n: values[n] for n in cmap[ref].outputs if n in values}, scorer)
        info = tree.calls[ref]
        check = CallCheck(
            ref, info.class_name, info.depth, info.order, paired.diffs, pending.pop(ref, ()), paired.unpaired
        )
        results[ref] = check
        if check.failed and captured is None:
            captured = Captured(ref, tuple(a.copy() for a in arrays), bad_inputs.get(ref))
        bad_inputs.pop(ref, None)

    tracer.run(on_start, on_end)
    return results, captured


def _plan(tree: CallTree, cmap: Mapping[ModuleRef, CallValues], root: ModuleRef | None, budget: int) -> list[ModuleRef]:
    """Calls breadth-first below ``root`` (None: the top calls), whole levels while the budget allows
    (one level at least)."""
    if root is None:
        level = [r for r, c in tree.calls.items() if c.parent is None]
    else:
        level = list(tree.children.get(root, ()))
    chosen: list[ModuleRef] = []
    used = 0
    while level:
        cost = sum(tree.calls[r].out_bytes + tree.calls[r].in_bytes for r in level if r in cmap)
        if chosen and used + cost > budget:
            break
        chosen.extend(r for r in level if r in cmap)
        used += cost
        level = [c for r in level for c in tree.children.get(r, ())]
    return chosen


@dataclass(frozen=True)
class Descent:
    """What :func:`descend` found: the verdict and every check made (the per-layer plot's points)."""

    culprit: ModuleRef | None  # None: nothing diverges beyond tolerance
    first_failing: CallCheck | None
    where: str
    tree: CallTree
    checks: tuple[CallCheck, ...] = field(repr=False)
    passes: int = 0
    values_marked: int = 0
    also_suspect: tuple[ModuleRef, ...] = ()
    captured: Captured | None = field(default=None, repr=False)  # the first failing call's tensors


def descend(
    tracer: CallTracer,
    cmap: Mapping[ModuleRef, CallValues],
    fetcher: ValueFetcher,
    feeds: Mapping[str, np.ndarray],
    scorer: Scorer,
    *,
    budget_bytes: int,
    tree: CallTree,
    value_owner: Mapping[str, ModuleRef],
) -> Descent:
    """Find the first diverging call (see the module docstring).

    ``value_owner`` (ONNX value -> innermost call producing it) decides when a failing *input* blames the
    parent: only when the parent's own nodes produced it. An exporter fusion can move a module's ONNX
    boundary (Conv+BatchNorm folded into one Conv named after the BN), pairing the BN's eager input
    with the conv's ONNX input: a false input failure that must not move the blame.
    """
    checks: dict[ModuleRef, CallCheck] = {}
    captures: dict[ModuleRef, Captured] = {}
    suspect: ModuleRef | None = None
    passes = marked = 0
    while True:
        watched = [r for r in _plan(tree, cmap, suspect, budget_bytes) if r not in checks]
        if not watched:
            break
        passes += 1
        names = [v for r in watched for v in cmap[r].outputs + cmap[r].inputs]
        marked += len(set(names))
        values = fetcher.run(feeds, names)
        found, captured = _compare_pass(tracer, tree, cmap, watched, values, scorer)
        checks.update(found)
        if captured is not None:  # the overall first failing call is the first failing one of its pass
            captures[captured.ref] = captured
        del values
        failing = sorted((c for c in checks.values() if c.failed), key=lambda c: c.order)
        if not failing or failing[0].ref == suspect:
            break
        suspect = failing[0].ref
        if all(k in checks or k not in cmap for k in tree.subtree(suspect)):
            break
    ordered = tuple(sorted(checks.values(), key=lambda c: c.order))
    first = next((c for c in ordered if c.failed), None)
    if first is None:
        return Descent(None, None, "", tree, ordered, passes, marked)
    parent = tree.calls[first.ref].parent
    bad_inputs = [d for d in first.inputs if not d.passed and value_owner.get(d.name) == parent]
    if bad_inputs and parent is not None:
        return Descent(
            parent,
            first,
            f"its own ops before it calls {first.ref}",
            tree,
            ordered,
            passes,
            marked,
            captured=captures.get(first.ref),
        )
    return Descent(
        first.ref,
        first,
        "its own ops",
        tree,
        ordered,
        passes,
        marked,
        _folded_before(tree, cmap, first.ref),
        captures.get(first.ref),
    )


def _folded_before(tree: CallTree, cmap: Mapping[ModuleRef, CallValues], ref: ModuleRef) -> tuple[ModuleRef, ...]:
    """Calls of the same parent that ran just before ``ref`` and have no ONNX node of their own."""
    parent = tree.calls[ref].parent
    by_order = sorted(tree.calls.values(), key=lambda c: c.order)
    found: list[ModuleRef] = []
    for c in reversed(by_order[: tree.calls[ref].order]):
        if c.ref in cmap or parent not in tree.ancestors(c.ref):
            break
        found.append(c.ref)
    return tuple(reversed(found))


def own_feeders(
    values: Sequence[str], owner: ModuleRef, table: Mapping[str, NodeOrigin], index: GraphIndex
) -> tuple[str, ...]:
    """The nodes of ``owner``'s own code (the root: nodes in no module) reached backwards from ``values``
    without entering another call: the parent's inline code that produced them."""
    root = owner.qualname == ""
    found: set[str] = set()
    stack = list(values)
    while stack:
        node = index.producer.get(stack.pop())
        if node is None or node in found:
            continue
        org = table.get(node)
        mine = (org is None or not org.stack) if root else (org is not None and org.module == owner)
        if mine:
            found.add(node)
            stack.extend(index.node_inputs[node])
    return tuple(n for n in index.order if n in found)
