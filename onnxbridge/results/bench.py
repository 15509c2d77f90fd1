"""Results of ``bench``: latency statistics per measurement, the source's check, and the whole run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..overlays.profile import NodeProfile

__all__ = ["LatencyStats", "BenchCase", "ReferenceCheck", "BenchSettings", "BenchReport", "SPEEDUP_BASIS"]

SPEEDUP_BASIS = "reference p50 / onnxruntime p50"


@dataclass(frozen=True)
class LatencyStats:
    """Per-run latency in milliseconds, over ``runs`` timed runs."""

    runs: int
    total_s: float
    p50: float
    p90: float
    p99: float
    mean: float
    stdev: float
    min: float
    max: float

    def latency_ms(self) -> dict[str, float]:
        """The ``latency_ms`` object of the JSON report."""
        return {k: getattr(self, k) for k in ("p50", "p90", "p99", "mean", "stdev", "min", "max")}


@dataclass(frozen=True)
class BenchCase:
    """One measurement: a runtime on a provider or device, at one set of input shapes."""

    runtime: str
    provider_requested: str | None
    provider_used: str
    batch: int
    shapes: dict[str, tuple[int, ...]]
    io_binding: bool
    stats: LatencyStats
    settings: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    speedup_vs_reference: float | None = None  # reference p50 / this p50, for ONNX Runtime rows

    @property
    def throughput_per_s(self) -> float:
        """Samples per second: batch size over mean latency."""
        return self.batch * 1000.0 / self.stats.mean if self.stats.mean > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = {
            "runtime": self.runtime,
            "provider_requested": self.provider_requested,
            "provider_used": self.provider_used,
            "batch": self.batch,
            "shapes": {k: list(v) for k, v in self.shapes.items()},
            "io_binding": self.io_binding,
            "runs": self.stats.runs,
            "total_s": self.stats.total_s,
            "latency_ms": self.stats.latency_ms(),
            "throughput_per_s": self.throughput_per_s,
            "settings": dict(self.settings),
            "note": self.note,
        }
        if self.runtime == "onnxruntime":
            d["speedup_vs_reference"] = self.speedup_vs_reference
        return d


@dataclass(frozen=True)
class ReferenceCheck:
    """One run of the source and the ONNX model on the bench inputs: a speed figure of a wrong model is worthless."""

    batch: int
    passed: bool
    max_abs: float
    error: str | None = None


@dataclass(frozen=True)
class BenchSettings:
    """How the measurements were taken."""

    warmup: int
    runs: int | None
    duration_s: float | None
    intra_op_threads: int | None
    graph_optimization_level: str
    io_binding: str
    seed: int


@dataclass(frozen=True)
class BenchReport:
    """Every measurement of a ``bench`` run; the headline figures are those of the first one."""

    results: tuple[BenchCase, ...]
    reference_results: tuple[BenchCase, ...] = ()
    reference_parity: tuple[ReferenceCheck, ...] = ()
    settings: BenchSettings | None = None
    batch_axis: str | None = None
    axis_sizes: dict[str, int] = field(default_factory=dict)
    profile: NodeProfile | None = None  # per-node time, from bench --profile

    @property
    def head(self) -> BenchCase:
        return self.results[0]

    @property
    def head_reference(self) -> BenchCase | None:
        return next((r for r in self.reference_results if r.batch == self.head.batch), None)

    def to_dict(self) -> dict[str, Any]:
        head, ref = self.head, self.head_reference
        return {
            "provider": head.provider_used,
            "providers": list(dict.fromkeys(r.provider_used for r in self.results)),
            "batch": head.batch,
            "shapes": {k: list(v) for k, v in head.shapes.items()},
            "latency_ms": head.stats.latency_ms(),
            "throughput_per_s": head.throughput_per_s,
            "reference": ref.provider_used if ref else None,
            "reference_latency_ms": ref.stats.latency_ms() if ref else None,
            "reference_throughput_per_s": ref.throughput_per_s if ref else None,
            "speedup_vs_reference": head.speedup_vs_reference,
            "speedup_basis": SPEEDUP_BASIS,
            "batch_axis": self.batch_axis,
            "axis_sizes": dict(self.axis_sizes),
            "settings": self.settings,
            "results": list(self.results),
            "reference_results": list(self.reference_results),
            "reference_parity": list(self.reference_parity),
            "profile": self.profile.to_dict() if self.profile is not None else None,
        }
