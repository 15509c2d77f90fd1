"""Provider truth per node: where ONNX Runtime really ran each node of a session.

``session.get_providers()`` only says which providers a session *may* use. Which one ran each
node is in ONNX Runtime's profile: every node event carries ``args.provider`` and ``args.op_name``.
We profile the first run of a session, read that file, delete it and turn profiling off again.

Under CUDA (or TensorRT), ONNX Runtime keeps small shape computations on the CPU on purpose and
inserts ``MemcpyToHost`` / ``MemcpyFromHost`` around nodes it places elsewhere. Those are counted
apart; every other node off the target provider is a *fallback* and is listed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ProviderError, UsageError
from ..options.providers import CPU
from ..results import PlacedNode, Placement

__all__ = [
    "FALLBACK_POLICIES",
    "SHAPE_OPS",
    "shape_nodes",
    "ProfileCapture",
    "parse_profile",
    "placement_from_profile",
    "apply_fallback_policy",
]

FALLBACK_POLICIES = ("warn", "fail")

_MEMCPY = {"MemcpyToHost", "MemcpyFromHost"}
_INT_TYPES = {"int64", "int32"}
# Ops ONNX Runtime computes shapes with (and keeps on the CPU on purpose under CUDA / TensorRT).
SHAPE_OPS = frozenset(
    {
        "Shape",
        "Size",
        "Gather",
        "Slice",
        "Concat",
        "Unsqueeze",
        "Squeeze",
        "Reshape",
        "Cast",
        "Add",
        "Sub",
        "Mul",
        "Div",
        "Mod",
        "Neg",
        "Abs",
        "Max",
        "Min",
        "Range",
        "ConstantOfShape",
        "Equal",
        "Less",
        "Greater",
        "Not",
        "Where",
        "Expand",
        "ReduceProd",
        "ReduceSum",
        "Identity",
        "Floor",
        "Ceil",
        "Sqrt",
        "Constant",
    }
)


def shape_nodes(model: Any) -> tuple[frozenset[str], frozenset[str]]:
    """(the nodes of ``model`` that compute shapes: every input derived from a ``Shape`` / ``Size``
    output or a constant, all node names). A node missing from the second set was made by ONNX Runtime."""
    graph = model.graph
    constant = {i.name for i in graph.initializer} | {""}
    shapes: set[str] = set()
    found: set[str] = set()
    for node in graph.node:
        derived = [n for n in node.input if n not in constant]
        if node.op_type in ("Shape", "Size") or (
            node.op_type in SHAPE_OPS and derived and all(n in shapes for n in derived)
        ):
            shapes.update(node.output)
            found.add(node.name)
        elif node.op_type == "Constant" or (node.op_type in SHAPE_OPS and not derived):
            constant.update(node.output)
    return frozenset(found), frozenset(n.name for n in graph.node)


def _is_shape_arith(args: Mapping[str, Any], op_type: str = "Shape") -> bool:
    """A shape op whose outputs are int64/int32 vectors (rank <= 1): shape arithmetic, kept on CPU on
    purpose. A small integer output of any other op (ArgMax, TopK...) is compute."""
    outs = args.get("output_type_shape") or []
    if not outs or op_type not in SHAPE_OPS:
        return False
    for entry in outs:
        if not isinstance(entry, Mapping) or len(entry) != 1:
            return False
        ((dtype, shape),) = entry.items()
        if dtype not in _INT_TYPES or not isinstance(shape, list) or len(shape) > 1:
            return False
    return True


def parse_profile(
    events: Iterable[Mapping[str, Any]],
    target: str,
    policy: str = "warn",
    graph_shape_nodes: tuple[frozenset[str], frozenset[str]] | None = None,
) -> Placement:
    """A :class:`Placement` from ONNX Runtime profile events (the JSON list ``end_profiling`` writes).

    Only the first execution of each node counts (a profile may hold several runs). With
    ``graph_shape_nodes`` (from :func:`shape_nodes`), a graph node counts as shape arithmetic only when
    the graph says it computes a shape; nodes ONNX Runtime made are judged by op and output alone.
    """
    seen: dict[str, PlacedNode] = {}
    shape_arith: set[str] = set()
    for ev in events:
        if not isinstance(ev, Mapping) or ev.get("cat") != "Node":
            continue
        name = str(ev.get("name", ""))
        if not name.endswith("_kernel_time"):
            continue
        args = ev.get("args") or {}
        provider = args.get("provider")
        if not provider:
            continue
        node = name[: -len("_kernel_time")]
        if node in seen:
            continue
        seen[node] = PlacedNode(node, str(args.get("op_name", "?")), str(provider))
        # a node of the graph counts only where the graph says it computes a shape; ORT-made ones by op alone
        outside = graph_shape_nodes is None or node not in graph_shape_nodes[1] or node in graph_shape_nodes[0]
        if _is_shape_arith(args, seen[node].op_type) and outside:
            shape_arith.add(node)
    by_provider = Counter(n.provider for n in seen.values())
    by_op: dict[str, Counter[str]] = {}
    for n in seen.values():
        by_op.setdefault(n.op_type, Counter())[n.provider] += 1
    memcpy = sum(1 for n in seen.values() if n.op_type in _MEMCPY)
    fallback: list[PlacedNode] = []
    shape_on_cpu = 0
    for n in seen.values():
        if n.provider == target or n.op_type in _MEMCPY:
            continue
        if n.provider == CPU.ort and n.name in shape_arith:
            shape_on_cpu += 1
            continue
        fallback.append(n)
    return Placement(
        target=target,
        nodes=len(seen),
        by_provider=dict(by_provider.most_common()),
        by_op={op: dict(c.most_common()) for op, c in sorted(by_op.items())},
        fallback=tuple(fallback),
        memcpy=memcpy,
        shape_on_cpu=shape_on_cpu,
        policy=policy,
    )


def placement_from_profile(
    path: str | Path,
    target: str,
    policy: str = "warn",
    graph_shape_nodes: tuple[frozenset[str], frozenset[str]] | None = None,
) -> Placement:
    """Read a profile file ONNX Runtime wrote and parse it."""
    try:
        events = json.loads(Path(path).read_text(encoding="utf-8") or "[]")
    except (OSError, ValueError) as e:
        raise ProviderError(
            f"cannot read ONNX Runtime's profile {path}: {type(e).__name__}: {e}",
            "rerun; if it persists, report it with your onnxruntime version",
        ) from e
    if not isinstance(events, list):
        events = []
    return parse_profile(events, target, policy, graph_shape_nodes)


class ProfileCapture:
    """Profiling switched on for one session's first run, written to a private temp folder.

    ``options()`` gives the ``SessionOptions`` to create the session with; ``collect(session, target)``
    ends profiling (ONNX Runtime profiles no further runs after that), reads the placement and
    deletes the folder.
    """

    def __init__(self, options: Any = None) -> None:
        self._options = options
        self._dir: Path | None = None

    def options(self) -> Any:
        import onnxruntime as ort

        so = self._options if self._options is not None else ort.SessionOptions()
        self._dir = Path(tempfile.mkdtemp(prefix="onnxbridge-profile-"))
        so.enable_profiling = True
        so.profile_file_prefix = str(self._dir / "ort")
        return so

    def collect(self, session: Any, target: str, policy: str = "warn", model: Any = None) -> Placement | None:
        """The placement of the run(s) so far, or None when nothing was profiled. ``model`` (the ONNX
        graph the session runs) tells shape arithmetic from compute."""
        try:
            path = session.end_profiling()
            if not path or not Path(path).is_file():
                return None
            return placement_from_profile(path, target, policy, shape_nodes(model) if model is not None else None)
        finally:
            self.cleanup()

    def cleanup(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def apply_fallback_policy(placement: Placement | None, policy: str) -> str | None:
    """``fail``: raise ``ProviderError`` (exit 2) when nodes fell back, or when no profile could be read
    (where the nodes ran is then unknown); ``warn``: return a note."""
    if policy not in FALLBACK_POLICIES:
        raise UsageError(f"unknown --fallback {policy!r}", f"use one of {', '.join(FALLBACK_POLICIES)}")
    if placement is None:
        if policy == "fail":
            raise ProviderError(
                "--fallback fail: no ONNX Runtime profile could be read, so where the nodes ran is unknown",
                "rerun; if the model never ran (every case failed before it), fix that first, or pass --fallback warn",
            )
        return None
    if placement.ok:
        return None
    listed = ", ".join(f"{n.name} ({n.op_type} on {n.provider})" for n in placement.fallback[:10])
    more = f" and {len(placement.fallback) - 10} more" if len(placement.fallback) > 10 else ""
    what = f"{len(placement.fallback)} of {placement.nodes} node(s) did not run on {placement.target}: {listed}{more}"
    if policy == "fail":
        raise ProviderError(
            f"--fallback fail: {what}",
            "these ops have no kernel for that provider (or for these dtypes); change the model or opset, "
            "or pass --fallback warn to accept the copies between devices",
        )
    return f"provider fallback: {what}"
