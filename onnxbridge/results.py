"""Frozen result values that flow between the stages and into the report."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ERROR_BIN_EDGES",
    "RouteAttempt",
    "ConversionResult",
    "SimplifyResult",
    "OutputParity",
    "ParityCase",
    "ParityReport",
    "PlacedNode",
    "Placement",
    "Report",
    "to_plain",
]


# Edges of the per-output error histogram of |got - ref|: count 0 holds the exact matches, count i
# (i >= 1) the errors in (EDGES[i-1], EDGES[i]]: up to 1e-9, one decade each up to 1e2, then
# everything above 1e2 (Inf, and NaN on one side only, included). 14 counts for 14 edges.
ERROR_BIN_EDGES: tuple[float, ...] = (0.0,) + tuple(10.0**e for e in range(-9, 3)) + (float("inf"),)


@dataclass(frozen=True)
class RouteAttempt:
    """One export route tried: did it export, was the ONNX valid, did it pass parity, and why not."""

    route: str
    ok: bool
    seconds: float = 0.0
    error: str | None = None
    failing_op: str | None = None
    exported: bool | None = None
    valid_onnx: bool | None = None
    parity: bool | None = None


@dataclass(frozen=True)
class ConversionResult:
    """What an exporter produced: the route that won, every route tried, the graph's names."""

    framework: str
    route: str
    attempts: tuple[RouteAttempt, ...]
    opset: int
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    seconds: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SimplifyResult:
    """What simplification did; ``applied`` is False when the unsimplified model was kept."""

    applied: bool
    nodes_before: int
    nodes_after: int
    seconds: float
    reason: str | None = None
    parity_passed: bool | None = None
    max_abs: float | None = None


@dataclass(frozen=True)
class OutputParity:
    """Parity metrics of one output in one case."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    max_abs: float
    max_rel: float
    mean_abs: float
    cosine: float | None
    atol: float
    rtol: float
    passed: bool
    mismatched: int = 0
    worst_index: tuple[int, ...] | None = None
    nan_or_inf: str | None = None
    error: str | None = None
    topk_agreement: float | None = None
    top1_agreement: float | None = None
    topk: int | None = None
    error_histogram: tuple[int, ...] | None = None
    tolerance_from: str | None = None


@dataclass(frozen=True)
class ParityCase:
    """One set of inputs run on both sides."""

    label: str
    seed: int | None
    shapes: dict[str, tuple[int, ...]]
    outputs: tuple[OutputParity, ...]
    passed: bool
    error: str | None = None


@dataclass(frozen=True)
class PlacedNode:
    """One node as ONNX Runtime really ran it."""

    name: str
    op_type: str
    provider: str


@dataclass(frozen=True)
class Placement:
    """Where each node of a session really ran, read from ONNX Runtime's profile.

    ``fallback`` lists the compute nodes that ran on another provider than ``target``; shape
    arithmetic that ONNX Runtime keeps on the CPU on purpose and memory copies are counted apart.
    """

    target: str
    nodes: int
    by_provider: dict[str, int]
    by_op: dict[str, dict[str, int]]
    fallback: tuple[PlacedNode, ...] = ()
    memcpy: int = 0
    shape_on_cpu: int = 0
    policy: str = "warn"

    @property
    def ok(self) -> bool:
        """True when every compute node ran on the target provider."""
        return not self.fallback

    def summary(self) -> str:
        """One line: node counts per provider and the fallbacks."""
        counts = ", ".join(f"{p.replace('ExecutionProvider', '')} {n}" for p, n in self.by_provider.items())
        line = f"{self.nodes} node(s) ran: {counts or 'none'}"
        if self.memcpy:
            line += f"; {self.memcpy} memory copy node(s)"
        if self.fallback:
            ops = sorted({n.op_type for n in self.fallback})
            line += (f"; {len(self.fallback)} node(s) fell back from {self.target} "
                     f"(ops: {', '.join(ops[:8])}{'...' if len(ops) > 8 else ''})")
        return line


@dataclass(frozen=True)
class ParityReport:
    """Every case and every output, with the provider that really ran and the tolerances used."""

    reference: str
    provider_requested: str
    provider_used: str
    providers: tuple[str, ...]
    passed: bool
    cases: tuple[ParityCase, ...]
    tolerances: dict[str, dict[str, float]]
    dynamic_axes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    placement: Placement | None = None
    broken_axes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    histogram_edges: tuple[float, ...] = ()

    @property
    def worst_abs(self) -> float:
        """The largest ``max_abs`` over every case and output (0.0 when none was compared)."""
        return max((o.max_abs for c in self.cases for o in c.outputs), default=0.0)

    @property
    def failures(self) -> list[tuple[ParityCase, OutputParity | None]]:
        """Every failing (case, output) pair; output is None when the whole case errored."""
        out: list[tuple[ParityCase, OutputParity | None]] = []
        for case in self.cases:
            if case.error:
                out.append((case, None))
            out.extend((case, o) for o in case.outputs if not o.passed)
        return out

    def summary(self) -> str:
        """One line: passed, or the worst failing output with its case."""
        if self.passed:
            return f"parity passed on {self.provider_used}: {len(self.cases)} cases, worst max_abs {self.worst_abs:.3g}"
        fails = self.failures
        case, out = fails[0]
        if self.broken_axes:
            axes = "; ".join(
                f"dynamic axis '{a}' breaks at size(s) {list(s)}" for a, s in self.broken_axes.items()
            )
            return f"parity FAILED: {axes} ({len(fails)} failing case/output pair(s))"
        if out is None:
            return f"parity FAILED in case {case.label}: {case.error}"
        return (
            f"parity FAILED: {len(fails)} output(s) out of tolerance; first: '{out.name}' in case {case.label} "
            f"max_abs {out.max_abs:.3g} (atol {out.atol:g}, rtol {out.rtol:g})"
            + (f" at index {list(out.worst_index)}" if out.worst_index is not None else "")
        )


@dataclass(frozen=True)
class Report:
    """The whole run, as written to JSON / Markdown / HTML."""

    command: str
    source: str | None = None
    framework: str | None = None
    output: str | None = None
    conversion: ConversionResult | None = None
    simplify: SimplifyResult | None = None
    validation: ParityReport | None = None
    bench: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        """Parity verdict of the run, or None when nothing was validated."""
        return None if self.validation is None else self.validation.passed

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (schema in CONTRACT.md)."""
        from ._version import __version__

        conv = self.conversion
        d: dict[str, Any] = {
            "onnxbridge_version": __version__,
            "command": self.command,
            "source": self.source,
            "framework": self.framework or (conv.framework if conv else None),
            "route": conv.route if conv else None,
            "routes_tried": [to_plain(a) for a in conv.attempts] if conv else [],
            "output": self.output,
            "opset": conv.opset if conv else self.extra.get("opset"),
            "inputs": list(conv.input_names) if conv else self.extra.get("inputs"),
            "outputs": list(conv.output_names) if conv else self.extra.get("outputs"),
            "simplify": to_plain(self.simplify) if self.simplify else None,
            "validation": to_plain(self.validation) if self.validation else None,
            "bench": self.bench,
            "timings": dict(self.timings),
            "notes": list(self.notes) + (list(conv.notes) if conv else []),
            "passed": self.passed,
        }
        for k, v in self.extra.items():
            d.setdefault(k, to_plain(v))
        return d

    def write(self, path: str | Path) -> Path:
        """Write the report; the format follows the suffix (.json, .md, .html)."""
        from .report import write_report

        return write_report(self, Path(path))


def to_plain(value: Any) -> Any:
    """Dataclasses, tuples and numpy scalars -> JSON-ready builtins."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return to_plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):  # NaN and Inf are not JSON
        return None
    return value
