"""fp16 with fp32 islands found by measurement: which nodes must stay fp32, and why.

1. ONNX Runtime's default block list (``default-op``) and the caller's (``user``);
2. overflow: run the fp32 graph and its fp16 emulation with every value exposed; a node whose fp16 output
   is non-finite while its inputs are finite (and the fp32 value is finite) stays fp32; a value whose
   producer stays fp32 but whose magnitude exceeds fp16's range makes its consumers stay too (the
   converter would cast it back to fp16 for them). Rounds repeat until nothing new is found, and are
   skipped when no fp32 value comes near the fp16 range;
3. accuracy: bisection over the remaining float nodes in graph order (``search.bisect_exclusions``)
   against the budget.

On CPU the search runs on the fp16 emulation (``precision.emulate_fp16``: ONNX Runtime's CPU provider
computes fp16 models in fp32 and would hide every problem); on a GPU it runs the converted model itself.
"""

from __future__ import annotations

import copy
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .._util import Progress, no_progress
from ..options import Budget
from ..results import KeptNode
from ._graph import name_nodes, run, run_intermediates, session
from .accuracy import Judged, judge_accuracy, measure
from .precision import FP16_MAX, convert_fp16, default_block_list, emulate_fp16
from .search import bisect_exclusions

__all__ = ["MixedResult", "NoFp16Model", "mixed_precision"]

Feeds = Mapping[str, np.ndarray]
_CONTROL_FLOW = {"If", "Loop", "Scan"}


class NoFp16Model(ValueError):
    """No fp16 model within the budget: every float node had to stay fp32, or the final model failed."""


@dataclass(frozen=True)
class MixedResult:
    kept: tuple[KeptNode, ...]
    float_nodes: int
    attempts: int
    overflow_rounds: int
    seconds: float
    mode: str  # emulate | native


class _Evaluator:
    """Build the candidate for a block list, run the search cases, judge against the fp32 outputs."""

    def __init__(
        self,
        model,
        cases: Sequence[Feeds],
        budget: Budget,
        margin: float,
        provider: str,
        threads: int | None,
        dtypes: Mapping[str, np.dtype],
    ) -> None:
        self.model, self.cases, self.budget, self.margin = model, list(cases), budget, margin
        self.provider, self.threads, self.dtypes = provider, threads, dtypes
        self.mode = "emulate" if provider == "cpu" else "native"
        ref = session(model, threads=threads)
        self.names = [o.name for o in ref.get_outputs()]
        self.refs = [run(ref, c) for c in self.cases]
        self.attempts = 0

    def candidate(self, kept: Iterable[str]):
        if self.mode == "emulate":
            return emulate_fp16(self.model, kept, self.dtypes)
        return convert_fp16(self.model, node_block_list=sorted(set(kept)))

    def __call__(self, kept: Iterable[str]) -> Judged:
        self.attempts += 1
        native = "cuda" if self.provider == "tensorrt" else self.provider  # no engine build per attempt
        sess = session(self.candidate(kept), "cpu" if self.mode == "emulate" else native, threads=self.threads)
        outputs = measure(self.refs, [run(sess, c) for c in self.cases], self.names, self.margin)
        return judge_accuracy(outputs, self.budget)


def _float_nodes(model, dtypes: Mapping[str, np.dtype]) -> list[str]:
    return [
        n.name
        for n in model.graph.node
        if n.op_type not in _CONTROL_FLOW
        and any(dtypes.get(o) is not None and np.issubdtype(dtypes[o], np.floating) for o in n.output)
    ]


def _blocked(model, op_block_list: Iterable[str], node_block_list: Iterable[str]) -> dict[str, KeptNode]:
    defaults, user_ops, user_nodes = set(default_block_list()), set(op_block_list), set(node_block_list)
    kept = {}
    for n in model.graph.node:
        if n.op_type in defaults:
            kept[n.name] = KeptNode(
                n.name, n.op_type, "default-op", f"{n.op_type} is on ONNX Runtime's fp16 block list"
            )
        elif n.op_type in user_ops or n.name in user_nodes:
            kept[n.name] = KeptNode(n.name, n.op_type, "user", "kept fp32 by the caller")
    return kept


def _fp32_values(model, cases: Sequence[Feeds], threads: int | None) -> tuple[dict[str, np.dtype], dict[str, float]]:
    """dtype and largest magnitude (over the first two cases) of every value of the fp32 model; the
    values themselves are dropped as soon as they are measured (BERT-base holds ~0.3 GB of them per case)."""
    dtypes: dict[str, np.dtype] = {}
    mag: dict[str, float] = {}
    for values in run_intermediates(model, cases[:2], threads=threads):
        for name, a in values.items():
            dtypes[name] = a.dtype
            if a.dtype == np.float32:
                mag[name] = max(mag.get(name, 0.0), float(np.abs(a).max()) if a.size else 0.0)
        values.clear()  # freed before the next case runs
    return dtypes, mag


def _overflow(
    model,
    ev: _Evaluator,
    cases: Sequence[Feeds],
    mag: Mapping[str, float],
    kept: dict[str, KeptNode],
    max_rounds: int,
    threads: int | None,
    say: Progress,
) -> int:
    """Keep fp32 where a non-finite value starts in fp16, then the consumers of out-of-range values."""
    nodes = {n.name: n for n in model.graph.node}
    producer = {o: n.name for n in model.graph.node for o in n.output}
    consumers: dict[str, list[str]] = defaultdict(list)
    for n in model.graph.node:
        for i in n.input:
            consumers[i].append(n.name)
    floats = list(mag)
    if not any(np.isfinite(m) and m > FP16_MAX / 2 for m in mag.values()):
        return 0
    rounds = 0
    for rounds in range(1, max_rounds + 1):
        cand = ev.candidate(kept)
        present = {o for n in cand.graph.node for o in n.output}
        names = [v for v in floats if v in present]
        added = 0
        for vals in run_intermediates(cand, cases[:2], names, threads=threads):

            def finite(name: str) -> bool:
                a = vals.get(name)
                return a is None or a.dtype.kind != "f" or bool(np.isfinite(a).all())

            for v in names:
                p = producer[v]
                if p not in kept:
                    if not finite(v) and np.isfinite(mag[v]) and all(finite(i) for i in nodes[p].input if i):
                        kept[p] = KeptNode(
                            p,
                            nodes[p].op_type,
                            "overflow",
                            f"output {v} reaches |x|={mag[v]:.3g} in fp32: non-finite in fp16",
                        )
                        added += 1
                elif np.isfinite(mag[v]) and mag[v] > FP16_MAX:
                    for c in consumers[v]:
                        if c not in kept:
                            kept[c] = KeptNode(
                                c,
                                nodes[c].op_type,
                                "overflow",
                                f"consumes {v} (|x|={mag[v]:.3g} beyond fp16's {FP16_MAX:g})",
                            )
                            added += 1
        say(f"fp16 overflow round {rounds}: {added} node(s) kept fp32")
        if not added:
            return rounds - 1
    return rounds


def mixed_precision(
    model,
    cases: Sequence[Feeds],
    budget: Budget,
    *,
    margin: float,
    provider: str = "cpu",
    op_block_list: Iterable[str] = (),
    node_block_list: Iterable[str] = (),
    max_attempts: int = 48,
    max_overflow_rounds: int = 12,
    threads: int | None = None,
    progress: Progress | None = None,
):
    """An fp16 model within ``budget`` of the fp32 model on ``cases``: ``(model, MixedResult)``.

    Raises :class:`NoFp16Model` when none was found (the fp32 model is untouched)."""
    t0 = time.perf_counter()
    say = progress or no_progress
    model = name_nodes(copy.deepcopy(model))
    nodes = {n.name: n for n in model.graph.node}
    kept = _blocked(model, op_block_list, node_block_list)
    dtypes, mag = _fp32_values(model, cases, threads)
    ev = _Evaluator(model, cases, budget, margin, provider, threads, dtypes)
    rounds = _overflow(model, ev, cases, mag, kept, max_overflow_rounds, threads, say)
    floats = _float_nodes(model, dtypes)
    outcome = bisect_exclusions(
        [n for n in floats if n not in kept], ev, always_excluded=list(kept), max_attempts=max_attempts, progress=say
    )
    for name in outcome.excluded:
        kept[name] = KeptNode(
            name, nodes[name].op_type, "accuracy", f"converting it broke the budget: {outcome.failures[name]}"
        )
    for name in outcome.unresolved:
        kept[name] = KeptNode(
            name, nodes[name].op_type, "search-limit", f"not tried within {max_attempts} attempts; kept fp32 to be safe"
        )
    if floats and all(n in kept for n in floats):
        raise NoFp16Model(
            f"no fp16 model within the budget ({budget.describe()}): every one of the "
            f"{len(floats)} float nodes had to stay fp32"
        )
    final = outcome.final or ev(list(kept))
    if not final.passed:
        raise NoFp16Model(f"no fp16 model within the budget: {'; '.join(final.failures[:3])}")
    result = MixedResult(tuple(kept.values()), len(floats), ev.attempts, rounds, time.perf_counter() - t0, ev.mode)
    return convert_fp16(model, node_block_list=sorted(kept)), result
