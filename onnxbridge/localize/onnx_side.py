"""ONNX vs ONNX: the first node whose output diverges (original vs simplified, fp32 vs fp16, CPU vs CUDA).

The search looks for a *root*: a paired value that fails while every paired value among its ancestors
passes. It starts from the first failing graph output and marks, per round, as many of the target's
ancestors as the byte budget allows (all of them when they fit, else an evenly spaced sample); the
earliest failing one becomes the target. Each round is one run of A and one of B.

Marked values change ONNX Runtime's fusions, so the first marked round re-checks the failing output: if
it now passes, the difference lives in a fusion of B, which is checked by running B with its graph
optimisations off. The answer names the node in A and in B and the *region* of B between the passing
paired inputs and the failing value (one node when the names line up; the fused span otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from ..results.localize import Divergence, LayerCheck
from .compare import Scorer, TensorDiff
from .finding import Finding, ReproCase, finite
from .graph import ValueFetcher, value_elem_types, value_nbytes
from .origins import origins
from .value_pairs import ValuePair, match_values, pair_numerically

if TYPE_CHECKING:
    import onnx

__all__ = ["localize_onnx"]


class _Search:
    """The state of one search: pairs, what was checked, and the budget of each round."""

    def __init__(
        self,
        fa: ValueFetcher,
        fb: ValueFetcher,
        feeds: Mapping[str, np.ndarray],
        feeds_b: Mapping[str, np.ndarray],
        pairs: Sequence[ValuePair],
        scorer: Scorer,
        budget: int,
    ) -> None:
        self.fa, self.fb, self.feeds, self.feeds_b, self.scorer, self.budget = fa, fb, feeds, feeds_b, scorer, budget
        self.by_a = {p.a: p for p in pairs}
        self.pos = {p.a: k for k, p in enumerate(pairs)}
        size_a, size_b = value_nbytes(fa.model, feeds), value_nbytes(fb.model, feeds_b)
        typical = int(np.median(list(size_a.values()))) if size_a else 1 << 20
        self.cost = {p.a: size_a.get(p.a, typical) + size_b.get(p.b, size_a.get(p.a, typical)) for p in pairs}
        self.checked: dict[str, TensorDiff] = {}
        self.rounds = self.marked = 0

    def compare(self, names: Sequence[str], refresh: Sequence[str] = ()) -> dict[str, TensorDiff]:
        """One run of each model with ``names`` marked (those not checked yet, and ``refresh``)."""
        todo = list(dict.fromkeys([n for n in names if n not in self.checked] + list(refresh)))
        if not todo:
            return {}
        va = self.fa.run(self.feeds, todo)
        vb = self.fb.run(self.feeds_b, [self.by_a[n].b for n in todo])
        self.rounds += 1
        self.marked += len(todo)
        got = {n: self.scorer.diff(n, va[n], vb[self.by_a[n].b]) for n in todo}
        self.checked.update(got)
        return got

    def fits(self, values: Sequence[str]) -> bool:
        return sum(self.cost[v] for v in values) <= self.budget

    def sample(self, values: Sequence[str]) -> list[str]:
        """An evenly spaced sample of ``values`` (the last one always in) that fits the budget."""
        k = len(values)
        while k > 2:
            idx = sorted(set(np.linspace(0, len(values) - 1, k).round().astype(int).tolist()))
            window = [values[i] for i in idx]
            if self.fits(window):
                return window
            k //= 2
        return [values[0], values[-1]] if len(values) > 1 else list(values)

    def chunks(self, values: Sequence[str]) -> list[list[str]]:
        """``values`` in consecutive windows that each fit the budget (one value at least)."""
        out: list[list[str]] = [[]]
        used = 0
        for v in values:
            if out[-1] and used + self.cost[v] > self.budget:
                out.append([])
                used = 0
            out[-1].append(v)
            used += self.cost[v]
        return [c for c in out if c]

    def failing(self, values: Sequence[str]) -> list[str]:
        return sorted((v for v in values if v in self.checked and not self.checked[v].passed), key=self.pos.__getitem__)

    def paired_ancestors(self, target: str) -> list[str]:
        return sorted(
            (v for v in self.fa.index.ancestors(target) if v in self.by_a and self.by_a[v].how != "input"),
            key=self.pos.__getitem__,
        )


def _root(s: _Search, target: str) -> str:
    """Walk back from a failing ``target`` to a failing value whose paired ancestors all pass."""
    while True:
        anc = s.paired_ancestors(target)
        full = s.fits(anc)
        for window in s.chunks(anc) if full else [s.sample(anc)]:
            s.compare(window)
        first = s.failing(anc)[0]
        if full:
            return first
        if first != target:
            target = first
            continue
        # the target is the earliest failing sample: check its ancestry since the previous sample
        earlier = [v for v in anc if s.pos[v] < s.pos[first] and v in s.checked]
        lo = s.pos[earlier[-1]] if earlier else -1
        for window in s.chunks([v for v in anc if lo < s.pos[v] <= s.pos[first]]):
            s.compare(window)
        first = s.failing(anc)[0]
        if first == target:
            return first
        target = first


def localize_onnx(
    a: onnx.ModelProto,
    b: onnx.ModelProto,
    feeds: Mapping[str, np.ndarray],
    scorer: Scorer,
    *,
    budget_bytes: int,
    feeds_b: Mapping[str, np.ndarray] | None = None,
    provider_a: str = "cpu",
    provider_b: str = "cpu",
) -> Finding:
    """The first node of B whose output leaves A's value for it (A is the reference)."""
    fa, fb = ValueFetcher(a, provider_a), ValueFetcher(b, provider_b)
    feeds_b = feeds if feeds_b is None else feeds_b
    pairs = match_values(a, b, fa.index, fb.index)
    notes: list[str] = []
    if sum(p.how in ("name", "node") for p in pairs) < 0.5 * len(fa.index.computed()):
        pairs = pair_numerically(fa, fb, feeds, feeds_b, pairs, scorer)
        notes.append("few value names line up between the two models: values were also paired by content")
    s = _Search(fa, fb, feeds, feeds_b, pairs, scorer, budget_bytes)
    outputs = [p.a for p in pairs if p.how == "output"]
    s.compare(outputs)  # plain sessions: nothing but the outputs marked
    failing = s.failing(outputs)
    if not failing:  # no divergence: sample the values along the model for the per-layer curve
        s.compare(s.sample([p.a for p in pairs if p.how != "input"]))
        return _finding(s, None, notes)
    target = failing[0]
    anc = s.paired_ancestors(target)
    first_window = anc if s.fits(anc) else s.sample(anc)
    if s.compare(first_window, refresh=[target])[target].passed:
        return _finding(s, None, notes + [_fusion_note(s, outputs)])
    root = _root(s, target)
    return _finding(s, root, notes)


def _fusion_note(s: _Search, outputs: Sequence[str]) -> str:
    """Why nothing could be named: the divergence vanishes once values are marked."""
    plain_b = ValueFetcher(s.fb.model, s.fb.provider, opt_level="disable", index=s.fb.index)
    va = s.fa.run(s.feeds, outputs)
    vb = plain_b.run(s.feeds_b, [s.by_a[o].b for o in outputs])
    ok = all(s.scorer.diff(o, va[o], vb[s.by_a[o].b]).passed for o in outputs)
    if ok:
        return (
            "the difference comes from an ONNX Runtime graph fusion in the candidate: it matches with graph "
            "optimisations disabled, and marking intermediate values switches the fusion off, so no single "
            "node diverges when observed"
        )
    return (
        "the difference disappears when intermediate values are observed (marking them changes ONNX "
        "Runtime's fusions) but not with graph optimisations disabled: no single node could be named"
    )


def _finding(s: _Search, root: str | None, notes: Sequence[str]) -> Finding:
    layers = tuple(_layer(s, v, d) for v, d in sorted(s.checked.items(), key=lambda kv: s.pos[kv[0]]))
    clean = Finding(None, layers=layers, total=len(s.by_a), passes=s.rounds, values_marked=s.marked, notes=tuple(notes))
    if root is None:
        return clean
    ia, ib = s.fa.index, s.fb.index
    ok_a = {v for v in ia.ancestors(root) if v != root and v in s.checked and s.checked[v].passed}
    ok_a |= {p.a for p in s.by_a.values() if p.how == "input"}
    vb = s.by_a[root].b
    region_b = ib.region(vb, {s.by_a[v].b for v in ok_a})
    node_a, node_b = ia.producer.get(root), ib.producer.get(vb)
    origin = origins(s.fa.model).get(node_a or "") or origins(s.fb.model).get(node_b or "")
    d = s.checked[root]
    where = "its own op" if len(region_b) <= 1 else f"a region of {len(region_b)} nodes in the candidate"
    divergence = Divergence(
        name=node_b or vb,
        kind="node",
        class_name=ia.op_type.get(node_a or "", ib.op_type.get(node_b or "", "")),
        where=where,
        onnx_nodes=region_b,
        score=d.score,
        max_abs=d.max_abs,
        call_site=origin.user_frame() if origin else None,
        module=str(origin.module) if origin and origin.stack else None,
        reference_value=root,
        candidate_value=vb,
        note=d.note or None,
    )
    return replace(clean, divergence=divergence, repro=_repro_case(s, root, region_b))


def _layer(s: _Search, value: str, d: TensorDiff) -> LayerCheck:
    node = s.fa.index.producer.get(value, "")
    return LayerCheck(
        value,
        s.fa.index.op_type.get(node, ""),
        0,
        s.pos[value],
        finite(d.score),
        None,
        d.max_abs,
        d.passed,
        (s.by_a[value].b,),
    )


def _repro_case(s: _Search, root: str, region_b: Sequence[str]) -> ReproCase | None:
    """B's region fed with A's (reference) values of its inputs, cast to B's types, expecting A's value."""
    from onnx import helper

    ib = s.fb.index
    produced = {o for n in region_b for o in ib.node_outputs[n]}
    need = list(
        dict.fromkeys(i for n in region_b for i in ib.node_inputs[n] if i and i not in produced and i not in ib.static)
    )
    to_a = {p.b: p.a for p in s.by_a.values()}
    if not region_b or any(x not in to_a for x in need):
        return None
    va = s.fa.run(s.feeds, [to_a[x] for x in need] + [root])
    types = value_elem_types(s.fb.model)

    def as_b(name: str, arr: np.ndarray) -> np.ndarray:
        t = types.get(name)
        return arr.astype(helper.tensor_dtype_to_np_dtype(t)) if t else arr

    return ReproCase(
        s.fb.model, tuple(region_b), {x: as_b(x, va[to_a[x]]) for x in need}, {s.by_a[root].b: va[root]}, s.fb.provider
    )
