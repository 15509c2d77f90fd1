"""Per-node time from ONNX Runtime's profiler (``bench --profile``).

The session is created with profiling on, run ``warmup`` times and then ``runs`` times; each node's
``*_kernel_time`` event is given to the run (``model_run`` event) whose span holds it, the warm-up
runs are dropped, and a node's time is its mean over the timed runs. The profiled total is the mean
``model_run`` duration: the nodes' times should add up to it within a few percent (the rest is the
executor's own work: feeding inputs, allocating outputs).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ProviderError

__all__ = ["PROFILE_RUNS", "PROFILE_WARMUP", "NodeProfile", "NodeTime", "parse_node_times", "profile_session"]

PROFILE_WARMUP = 3
PROFILE_RUNS = 10


@dataclass(frozen=True)
class NodeTime:
    """One node as ONNX Runtime ran it: name (ORT's, which is the graph's unless ORT fused it), op,
    provider, and its mean time per run in milliseconds."""

    name: str
    op_type: str
    provider: str
    ms: float


@dataclass(frozen=True)
class NodeProfile:
    """Every node's mean time per run, slowest first, and the profiled total per run."""

    nodes: tuple[NodeTime, ...]
    total_ms: float
    runs: int
    provider: str

    @property
    def nodes_ms(self) -> float:
        """The nodes' times added up."""
        return sum(n.ms for n in self.nodes)

    @property
    def coverage(self) -> float:
        """The nodes' sum over the profiled total (1.0: the nodes are all the time)."""
        return self.nodes_ms / self.total_ms if self.total_ms > 0 else 0.0

    def top(self, n: int = 5) -> tuple[NodeTime, ...]:
        return self.nodes[:n]

    def to_dict(self, top: int = 10) -> dict[str, Any]:
        """The ``bench.profile`` object of the JSON report."""
        return {
            "provider": self.provider,
            "runs": self.runs,
            "total_ms": self.total_ms,
            "nodes_ms": self.nodes_ms,
            "coverage": self.coverage,
            "nodes": len(self.nodes),
            "top": [
                {
                    "name": t.name,
                    "op_type": t.op_type,
                    "provider": t.provider,
                    "ms": t.ms,
                    "share": t.ms / self.total_ms if self.total_ms > 0 else 0.0,
                }
                for t in self.top(top)
            ],
        }


def parse_node_times(events: Iterable[Mapping[str, Any]], warmup: int, provider: str = "") -> NodeProfile:
    """A :class:`NodeProfile` from the events ``end_profiling`` wrote, the first ``warmup`` runs dropped."""
    events = [e for e in events if isinstance(e, Mapping)]
    runs = sorted(
        (float(e["ts"]), float(e["dur"])) for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    timed = runs[warmup:]
    if not timed:
        raise ProviderError("ONNX Runtime's profile holds no timed run", "rerun with more --runs")
    starts = [t for t, _ in runs]
    sums: dict[str, float] = {}
    info: dict[str, tuple[str, str]] = {}
    for e in events:
        name = str(e.get("name", ""))
        if e.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        ts, dur = float(e.get("ts", 0.0)), float(e.get("dur", 0.0))
        i = bisect_right(starts, ts) - 1
        if i < warmup or i < 0 or ts > runs[i][0] + runs[i][1]:
            continue
        node = name[: -len("_kernel_time")]
        args = e.get("args") or {}
        sums[node] = sums.get(node, 0.0) + dur
        info.setdefault(node, (str(args.get("op_name", "?")), str(args.get("provider", "?"))))
    n = len(timed)
    nodes = sorted(
        (NodeTime(k, info[k][0], info[k][1], v / n / 1000.0) for k, v in sums.items()), key=lambda t: (-t.ms, t.name)
    )
    total = sum(d for _, d in timed) / n / 1000.0
    return NodeProfile(tuple(nodes), total, n, provider)


def profile_session(
    payload: bytes | str,
    feeds: Mapping[str, Any],
    requested: str,
    options: Any,
    warmup: int = PROFILE_WARMUP,
    runs: int = PROFILE_RUNS,
) -> NodeProfile:
    """Run the model ``warmup + runs`` times on a profiling session of ``requested`` and read the profile.

    ``options`` are the ``SessionOptions`` the bench used (threads, optimisation level); profiling is
    switched on in them and its file goes to a private temp folder, deleted afterwards.
    """
    from ..runtime.providers import create_session

    folder = Path(tempfile.mkdtemp(prefix="onnxbridge-nodeprof-"))
    try:
        options.enable_profiling = True
        options.profile_file_prefix = str(folder / "ort")
        session, choice = create_session(payload, requested, options=options)
        names = {i.name for i in session.get_inputs()}
        fed = {k: v for k, v in feeds.items() if k in names}
        for _ in range(warmup + runs):
            session.run(None, fed)
        path = session.end_profiling()
        try:
            events = json.loads(Path(path).read_text(encoding="utf-8") or "[]")
        except (OSError, ValueError) as e:
            raise ProviderError(
                f"cannot read ONNX Runtime's profile {path}: {e}",
                "rerun; if it persists, report it with your onnxruntime version",
            ) from e
        return parse_node_times(events if isinstance(events, list) else [], warmup, choice.used)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
