"""Graph facts for localisation (order, producers, constants, value sizes) and fetching intermediate values.

Facts this relies on (onnx 1.23, onnxruntime 1.31):

* ONNX Runtime accepts added graph outputs with no type at all and infers them; the element type
  from ``value_info`` is written when known.
* Every graph output is materialised for the whole run, fetched or not: the values *marked* per
  session are what costs memory, so the budget counts marked values.
* Marked values block the fusions that would swallow them (LayerNorm, GELU, attention on CPU), so
  a marked run may compute slightly differently from the plain one: callers confirm that the
  divergence survives marking (see ``onnx_side`` and ``torch_side``).
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UsageError

if TYPE_CHECKING:
    import onnx

    from ..runtime.sessions import OrtRunner

__all__ = ["topo_order", "GraphIndex", "value_elem_types", "value_nbytes", "marked", "ValueFetcher"]

_RANDOM_OPS = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial"})


def topo_order(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    """Top-level nodes in topological order (as stored when it already is one; Kahn's algorithm otherwise)."""
    nodes = list(model.graph.node)
    seen = {i.name for i in model.graph.input} | {i.name for i in model.graph.initializer} | {""}
    for n in nodes:
        if any(i not in seen for i in n.input):
            break
        seen.update(n.output)
    else:
        return nodes
    producer = {o: k for k, n in enumerate(nodes) for o in n.output}
    deps = [{producer[i] for i in n.input if i in producer} for n in nodes]
    users: dict[int, list[int]] = {}
    for k, d in enumerate(deps):
        for p in d:
            users.setdefault(p, []).append(k)
    indeg = [len(d) for d in deps]
    ready = [k for k, d in enumerate(indeg) if d == 0]
    heapq.heapify(ready)
    out: list[int] = []
    while ready:
        k = heapq.heappop(ready)
        out.append(k)
        for u in users.get(k, ()):
            indeg[u] -= 1
            if indeg[u] == 0:
                heapq.heappush(ready, u)
    return [nodes[k] for k in out]


@dataclass(frozen=True)
class GraphIndex:
    """Static facts about one graph: order, the producer and consumers of every value, constants."""

    order: tuple[str, ...]  # node names, topological
    producer: Mapping[str, str]  # value -> node name
    consumers: Mapping[str, tuple[str, ...]]  # value -> node names
    position: Mapping[str, int]  # value -> index of its producer in ``order``
    node_inputs: Mapping[str, tuple[str, ...]]
    node_outputs: Mapping[str, tuple[str, ...]]
    op_type: Mapping[str, str]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    initializers: frozenset[str]
    static: frozenset[str]  # values no graph input reaches: initializers, constants, what is computed from them

    @staticmethod
    def of(model: onnx.ModelProto) -> GraphIndex:
        from ..onnxio import graph_inputs

        nodes = topo_order(model)
        names: list[str] = []
        producer: dict[str, str] = {}
        consumers: dict[str, list[str]] = {}
        position: dict[str, int] = {}
        ins: dict[str, tuple[str, ...]] = {}
        outs: dict[str, tuple[str, ...]] = {}
        inits = frozenset(i.name for i in model.graph.initializer)
        static = set(inits)
        for k, n in enumerate(nodes):
            name = n.name or f"#{k}:{n.op_type}"
            names.append(name)
            ins[name], outs[name] = tuple(n.input), tuple(o for o in n.output if o)
            for i in n.input:
                if i:
                    consumers.setdefault(i, []).append(name)
            for o in outs[name]:
                producer[o], position[o] = name, k
            if n.op_type not in _RANDOM_OPS and all(not i or i in static for i in n.input):
                static.update(outs[name])
        return GraphIndex(
            tuple(names),
            producer,
            {k: tuple(v) for k, v in consumers.items()},
            position,
            ins,
            outs,
            {name: n.op_type for name, n in zip(names, nodes)},
            tuple(i.name for i in graph_inputs(model)),
            tuple(o.name for o in model.graph.output),
            inits,
            frozenset(static),
        )

    def computed(self) -> list[str]:
        """Every value a node computes from the graph inputs, in topological order."""
        return sorted((v for v in self.producer if v not in self.static), key=self.position.__getitem__)

    def ancestors(self, value: str) -> set[str]:
        """The values ``value`` depends on, itself included."""
        seen: set[str] = set()
        stack = [value]
        while stack:
            v = stack.pop()
            if v in seen or not v:
                continue
            seen.add(v)
            node = self.producer.get(v)
            if node is not None:
                stack.extend(self.node_inputs[node])
        return seen

    def region(self, output: str, stop: set[str]) -> tuple[str, ...]:
        """The nodes on paths from the ``stop`` values (exclusive) and constants up to ``output``."""
        found: set[str] = set()
        stack = [output]
        seen: set[str] = set()
        while stack:
            v = stack.pop()
            if v in seen or v in stop or v in self.static or not v:
                continue
            seen.add(v)
            node = self.producer.get(v)
            if node is None or node in found:
                continue
            found.add(node)
            stack.extend(self.node_inputs[node])
        return tuple(n for n in self.order if n in found)


def value_elem_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every value whose type is recorded (inputs, outputs, value_info)."""
    out = {}
    for v in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        if v.type.HasField("tensor_type") and v.type.tensor_type.elem_type:
            out[v.name] = v.type.tensor_type.elem_type
    return out


def value_nbytes(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Estimated bytes of every typed value at the sizes of ``feeds``: named dims take the size the
    feeds give them, unknown dims the largest feed dim (a pessimistic guess)."""
    from onnx import helper

    sizes: dict[str, int] = {}
    for i in model.graph.input:
        if i.name in feeds:
            for d, n in zip(i.type.tensor_type.shape.dim, np.shape(feeds[i.name])):
                if d.dim_param:
                    sizes[d.dim_param] = int(n)
    fallback = max((int(n) for f in feeds.values() for n in np.shape(f)), default=1)
    out: dict[str, int] = {}
    for v in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        tt = v.type.tensor_type
        if not v.type.HasField("tensor_type") or not tt.elem_type or not tt.HasField("shape"):
            continue
        count = 1
        for d in tt.shape.dim:
            count *= d.dim_value if d.HasField("dim_value") else sizes.get(d.dim_param, fallback)
        try:
            item = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type)).itemsize
        except (KeyError, TypeError, ValueError):
            item = 4
        out[v.name] = int(count) * item
    return out


@contextlib.contextmanager
def marked(model: onnx.ModelProto, names: Sequence[str]) -> Iterator[onnx.ModelProto]:
    """``model`` with ``names`` added as graph outputs (typed where known) for the ``with`` block, then
    removed again: no copy of the weights."""
    from onnx import helper

    existing = {o.name for o in model.graph.output}
    types = value_elem_types(model)
    added = 0
    for name in names:
        if name in existing:
            continue
        existing.add(name)
        vi = helper.make_empty_tensor_value_info(name)
        if name in types:
            vi.type.tensor_type.elem_type = types[name]
        model.graph.output.append(vi)
        added += 1
    try:
        yield model
    finally:
        for _ in range(added):
            model.graph.output.pop()


class ValueFetcher:
    """Runs an ONNX model with chosen intermediate values marked as outputs, on one provider.

    One ONNX Runtime session per marked set, and only the last one is kept (a session holds the weights);
    names the last session marks already reuse it. Initializers asked for are read from the model, graph
    inputs echoed from the feeds.
    """

    def __init__(
        self,
        model: onnx.ModelProto,
        provider: str = "cpu",
        *,
        opt_level: str = "all",
        threads: int | None = None,
        index: GraphIndex | None = None,
    ) -> None:
        self.model, self.provider, self.opt_level, self.threads = model, provider, opt_level, threads
        self.index = index or GraphIndex.of(model)
        self._marked: tuple[str, ...] | None = None
        self._runner: OrtRunner | None = None
        self.sessions = 0
        self.runs = 0

    def _session(self, names: Sequence[str]) -> OrtRunner:
        from ..onnxio import TWO_GB
        from ..runtime.sessions import OrtRunner
        from ..runtime.timing import session_options

        key = tuple(sorted(set(names)))
        if self._runner is not None and set(key) <= set(self._marked or ()):
            return self._runner  # already marked: a new session would cost a model load
        self._runner = None  # free the previous session first
        if self.model.ByteSize() >= TWO_GB:
            raise UsageError(
                "localisation marks intermediate values in memory: models over 2 GB are not supported yet",
                "debug a smaller configuration of the model",
            )
        with marked(self.model, key) as m:
            self._runner = OrtRunner(m, self.provider, options=session_options(self.threads, self.opt_level))
        self._marked = key
        self.sessions += 1
        return self._runner

    @property
    def provider_used(self) -> str | None:
        """The provider the last session really ran on."""
        return None if self._runner is None else self._runner.provider.used

    def run(self, feeds: Mapping[str, np.ndarray], names: Sequence[str]) -> dict[str, np.ndarray]:
        """``{name: array}`` for ``names`` (computed values, graph inputs or initializers)."""
        from onnx import numpy_helper

        names = list(dict.fromkeys(names))
        out = {n: np.asarray(feeds[n]) for n in names if n in feeds}
        inits = [n for n in names if n in self.index.initializers and n not in out]
        if inits:
            by_name = {i.name: i for i in self.model.graph.initializer}
            out.update((n, numpy_helper.to_array(by_name[n])) for n in inits)
        computed = [n for n in names if n not in out and (n in self.index.producer or n in self.index.outputs)]
        if computed:
            out.update(self._session(computed).fetch(dict(feeds), computed))
            self.runs += 1
        return out
