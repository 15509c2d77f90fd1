"""Results of the export and graph-rewriting stages: routes tried, simplification, optimisation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .parity import ParityReport

__all__ = [
    "RouteAttempt",
    "ExportedAxis",
    "ConversionResult",
    "SimplifierCandidate",
    "SimplifyResult",
    "OptimizeResult",
    "UpgradeResult",
]


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
class ExportedAxis:
    """The range of sizes an exporter recorded for one dynamic axis (``hi`` None: unbounded), and the
    guard in the model's code that bounds it when known (``s27 <= 24 at model.py:36 (if x.shape[1] > 24:)``)."""

    axis: str
    lo: int
    hi: int | None = None
    guard: str | None = None


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
    axis_ranges: tuple[ExportedAxis, ...] = ()
    route_order: tuple[str, ...] = ()  # every route offered, in the order they would be tried
    not_tried: tuple[str, ...] = ()  # those after the winner: an earlier route passed, so they never ran


@dataclass(frozen=True)
class SimplifierCandidate:
    """One simplifier's attempt (``--simplifier auto``): did it run, its node count and weight bytes,
    the op counts it changed, whether parity held (None: not checked, it could not win), and why not."""

    tool: str
    ok: bool
    nodes: int
    weight_bytes: int
    seconds: float
    op_diff: dict[str, int] = field(default_factory=dict)
    parity: bool | None = None
    detail: str | None = None


@dataclass(frozen=True)
class SimplifyResult:
    """What simplification did; ``applied`` is False when the unsimplified model was kept.

    ``tool`` names the simplifier whose result was kept, ``op_diff`` the op counts it changed, and
    ``candidates`` every simplifier tried when several were (``--simplifier auto``)."""

    applied: bool
    nodes_before: int
    nodes_after: int
    seconds: float
    reason: str | None = None
    parity_passed: bool | None = None
    max_abs: float | None = None
    tool: str | None = None
    op_diff: dict[str, int] = field(default_factory=dict)
    candidates: tuple[SimplifierCandidate, ...] = ()


@dataclass(frozen=True)
class OptimizeResult:
    """What optimisation did; ``applied`` is False when the unoptimised model was kept, with ``reason``."""

    applied: bool
    target: str | None
    fusion: str | None
    nodes_before: int
    nodes_after: int
    seconds: float
    fused_ops: dict[str, int] = field(default_factory=dict)
    steps: tuple[str, ...] = ()
    reason: str | None = None
    parity_passed: bool | None = None
    max_abs: float | None = None

    @property
    def notes(self) -> tuple[str, ...]:
        """A report note when optimisation was not kept, or kept with a caveat."""
        if not self.reason:
            return ()
        return (f"optimisation: {self.reason}",) if self.applied else (f"optimisation not applied: {self.reason}",)


@dataclass(frozen=True)
class UpgradeResult:
    """What ``onnxbridge upgrade`` changed: opset and IR version, node counts (the simplification that
    follows has its own result), op types that came or went, ops whose definition changed version,
    and the legacy repairs. ``golden`` is the replay of expected outputs shipped with the model."""

    opset_before: int
    opset_after: int
    ir_before: int
    ir_after: int
    nodes_before: int
    nodes_after: int
    ops_removed: dict[str, int] = field(default_factory=dict)
    ops_added: dict[str, int] = field(default_factory=dict)
    op_versions: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    initializer_inputs_removed: int = 0
    shapes_added: int = 0
    seconds: float = 0.0
    golden: ParityReport | None = None
    golden_source: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def replaced(self) -> str:
        """``Upsample x1 -> Resize x1``, or ``none``."""
        gone = ", ".join(f"{op} x{n}" for op, n in self.ops_removed.items())
        came = ", ".join(f"{op} x{n}" for op, n in self.ops_added.items())
        return f"{gone or 'nothing'} -> {came or 'nothing'}" if gone or came else "none"
