"""Results of the parity check: per output, per case, the whole report, and where nodes ran."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..options.providers import provider_label

__all__ = [
    "ERROR_BIN_EDGES",
    "OracleDistances",
    "OracleSummary",
    "OutputParity",
    "CaseKind",
    "Side",
    "ParityCase",
    "ParityReport",
    "PlacedNode",
    "Placement",
    "AxisOutcome",
    "AxisVerdict",
    "ToleranceUsed",
]


# Edges of the per-output error histogram of |got - ref|: count 0 holds the exact matches, count i
# (i >= 1) the errors in (EDGES[i-1], EDGES[i]]: up to 1e-9, one decade each up to 1e2, then
# everything above 1e2 (Inf, and NaN on one side only, included). 14 counts for 14 edges.
ERROR_BIN_EDGES: tuple[float, ...] = (0.0,) + tuple(10.0**e for e in range(-9, 3)) + (float("inf"),)


@dataclass(frozen=True)
class OracleDistances:
    """The precision oracle's three distances for one output in one case (max abs, float64): the source's
    own float32 output from the source run in float64, the ONNX output from float64, the ONNX output from the
    source. ``decided``: the oracle passed an output the tolerance failed, by ``rule`` (``tolerance``: the
    ONNX output is within the tolerance of float64; ``multiple``: within ``multiple`` times the source's own
    distance): a numerically sensitive model."""

    source_vs_fp64: float
    onnx_vs_fp64: float
    onnx_vs_source: float
    multiple: float
    decided: bool
    rule: str | None = None


@dataclass(frozen=True)
class OracleSummary:
    """What the precision oracle did in one check: whether the source could run in float64 (``how``; else
    ``why_not``, and the fixed tolerance alone decides), the multiple allowed, how many output checks it
    judged (``consulted``: they failed the tolerance) and passed (``decided``)."""

    available: bool
    how: str | None
    multiple: float
    consulted: int = 0
    decided: int = 0
    why_not: str | None = None

    def line(self) -> str:
        """One line for people."""
        if not self.available:
            return f"no float64 oracle: {self.why_not}; the fixed tolerance decides"
        if self.decided:
            return (
                f"numerically sensitive model: {self.decided} output check(s) failing the fixed tolerance "
                f"are as close to float64 as the source ({self.how}; within the tolerance of float64 or "
                f"{self.multiple:g}x the source's own float32 distance)"
            )
        if self.consulted:
            return f"float64 oracle ({self.how}) consulted on {self.consulted} output check(s): none within its rule"
        return f"float64 oracle available ({self.how}), not needed: the fixed tolerance held"


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
    masked_positions: int = 0
    oracle: OracleDistances | None = None


class CaseKind(str, enum.Enum):
    """What a parity case is."""

    SEED = "seed"  # generated inputs at the export sizes
    AXIS = "axis"  # generated, one dynamic axis at another size
    ALL_AXES = "all_axes"  # generated, every dynamic axis larger at once
    EXAMPLE = "example"  # the converter's example inputs (choosing an export route)
    FIXTURE = "fixture"  # read from an --inputs / golden fixtures file
    SOURCE_LIMIT = "source_limit"  # generated, but the source itself cannot run it: listed, not judged


class Side(str, enum.Enum):
    """Which side of a comparison failed to produce outputs."""

    REFERENCE = "reference"  # the reference (source framework, original model, fixtures) could not run it
    CANDIDATE = "candidate"  # the model under test could not run it
    COMPARISON = "comparison"  # both ran, but their outputs cannot be compared (count differs)


@dataclass(frozen=True)
class ParityCase:
    """One set of inputs run on both sides.

    ``kind`` says what the case is (``axis`` and ``size`` name the swept axis); ``failed_side``
    says which side could not run it, when ``error`` is set.
    """

    label: str
    seed: int | None
    shapes: dict[str, tuple[int, ...]]
    outputs: tuple[OutputParity, ...]
    passed: bool
    error: str | None = None
    kind: CaseKind = CaseKind.FIXTURE
    axis: str | None = None
    size: int | None = None
    failed_side: Side | None = None
    source_s: float | None = None  # wall time of the source's run of this case (None: not run for it)
    onnx_s: float | None = None  # wall time of ONNX Runtime's run of this case


class AxisOutcome(str, enum.Enum):
    """What the sweep found about one dynamic axis's range."""

    OK = "ok"  # every size tried in the declared range matches
    EXPORT_NARROWED = "export_narrowed"  # the exported model is valid on a narrower range than declared
    SOURCE_LIMIT = "source_limit"  # the exporter's bound is the source's own limit (it cannot run past it)
    CONSERVATIVE = "conservative"  # the exporter recorded a narrower range, but the model matches past it


@dataclass(frozen=True)
class AxisVerdict:
    """One dynamic axis: the ranges declared and recorded by the exporter, the smallest size the source
    runs (when 1 is too small), and what the sweep found. Bounds are ``[lo, hi]``, ``hi`` None: unbounded."""

    axis: str
    export_size: int
    declared: tuple[int, int | None]
    exported: tuple[int, int | None] | None = None
    smallest_runnable: int | None = None
    outcome: AxisOutcome = AxisOutcome.OK
    guard: str | None = None
    note: str | None = None


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
        counts = ", ".join(f"{provider_label(p)} {n}" for p, n in self.by_provider.items())
        line = f"{self.nodes} node(s) ran: {counts or 'none'}"
        if self.memcpy:
            line += f"; {self.memcpy} memory copy node(s)"
        if self.fallback:
            ops = sorted({n.op_type for n in self.fallback})
            line += (
                f"; {len(self.fallback)} node(s) fell back from {self.target} "
                f"(ops: {', '.join(ops[:8])}{'...' if len(ops) > 8 else ''})"
            )
        return line


@dataclass(frozen=True)
class ToleranceUsed:
    """The tolerance one output was judged at: ``|got - ref| <= atol + rtol * |ref|``; ``dtype`` the output's
    type and ``source`` where the numbers come from (``--tol``, ``--atol/--rtol``, ``float16 default`` ...)."""

    atol: float
    rtol: float
    dtype: str | None = None
    source: str | None = None

    def to_dict(self) -> dict[str, float | str | None]:
        """The report's form: ``atol``, ``rtol`` and, for an output that was compared, ``dtype`` and ``from``."""
        if self.dtype is None:
            return {"atol": self.atol, "rtol": self.rtol}
        return {"atol": self.atol, "rtol": self.rtol, "dtype": self.dtype, "from": self.source}


@dataclass(frozen=True)
class ParityReport:
    """Every case and every output, with the provider that really ran and the tolerances used."""

    reference: str
    provider_requested: str
    provider_used: str
    providers: tuple[str, ...]
    passed: bool
    cases: tuple[ParityCase, ...]
    tolerances: dict[str, ToleranceUsed]
    dynamic_axes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    placement: Placement | None = None
    broken_axes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    histogram_edges: tuple[float, ...] = ()
    axes: tuple[AxisVerdict, ...] = ()
    source_repeats: bool | None = None
    nondeterminism: str | None = None
    oracle: OracleSummary | None = None

    @property
    def masked_positions(self) -> int:
        """``[batch, seq]`` positions the attention / padding mask left out, over every case and output."""
        return sum(o.masked_positions for c in self.cases for o in c.outputs)

    def _worst_decided(self) -> str:
        """The oracle's three distances on the output it passed furthest from the source."""
        decided = [o for c in self.cases for o in c.outputs if o.oracle is not None and o.oracle.decided]
        if not decided:
            return ""
        o = max(decided, key=lambda o: o.oracle.onnx_vs_source if o.oracle else 0.0)
        d = o.oracle
        assert d is not None
        return (
            f"; worst '{o.name}': source vs float64 {d.source_vs_fp64:.3g}, ONNX vs float64 "
            f"{d.onnx_vs_fp64:.3g}, ONNX vs source {d.onnx_vs_source:.3g}"
        )

    @property
    def compared(self) -> int:
        """Cases whose outputs were compared (the source could run them)."""
        return sum(1 for c in self.cases if c.kind is not CaseKind.SOURCE_LIMIT and c.failed_side is not Side.REFERENCE)

    @property
    def narrowed(self) -> tuple[AxisVerdict, ...]:
        """Axes on which the exported model is valid on a narrower range than declared."""
        return tuple(a for a in self.axes if a.outcome is AxisOutcome.EXPORT_NARROWED)

    @property
    def worst_abs(self) -> float:
        """The largest ``max_abs`` over every case and output (0.0 when none was compared)."""
        return max((o.max_abs for c in self.cases for o in c.outputs), default=0.0)

    @property
    def failures(self) -> list[tuple[ParityCase, OutputParity | None]]:
        """Every failing (case, output) pair; output is None when the whole case errored."""
        out: list[tuple[ParityCase, OutputParity | None]] = []
        for case in self.cases:
            if case.kind is CaseKind.SOURCE_LIMIT:
                continue
            if case.error:
                out.append((case, None))
            out.extend((case, o) for o in case.outputs if not o.passed)
        return out

    def summary(self) -> str:
        """One line: passed, or the worst failing output with its case."""
        skipped = len(self.cases) - self.compared
        if self.passed:
            return (
                f"parity passed on {self.provider_used}: {self.compared} cases, worst max_abs {self.worst_abs:.3g}"
                + (f" ({skipped} size(s) the source cannot run, not compared)" if skipped else "")
                + (f"; {self.masked_positions} masked position(s) not compared" if self.masked_positions else "")
                + (
                    f"; {self.oracle.line()}{self._worst_decided()}"
                    if self.oracle is not None and self.oracle.decided
                    else ""
                )
            )
        if self.nondeterminism:
            return f"parity NOT JUDGED: {self.nondeterminism}"
        if self.narrowed:
            return "parity FAILED: " + "; ".join(a.note or a.axis for a in self.narrowed)
        fails = self.failures
        if not self.compared or not fails:
            why = next((c.error for c in self.cases if c.error), self.notes[0] if self.notes else None)
            return "parity NOT CHECKED: no case could be compared" + (f" ({why})" if why else "")
        case, out = fails[0]
        if self.broken_axes:
            axes = "; ".join(f"dynamic axis '{a}' breaks at size(s) {list(s)}" for a, s in self.broken_axes.items())
            return f"parity FAILED: {axes} ({len(fails)} failing case/output pair(s))"
        if out is None:
            return f"parity FAILED in case {case.label}: {case.error}"
        return (
            f"parity FAILED: {len(fails)} output(s) out of tolerance; first: '{out.name}' in case {case.label} "
            f"max_abs {out.max_abs:.3g} (atol {out.atol:g}, rtol {out.rtol:g})"
            + (f" at index {list(out.worst_index)}" if out.worst_index is not None else "")
        )
