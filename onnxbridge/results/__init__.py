"""Frozen result values that flow between the stages and into the report, and one serializer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bench import BenchCase, BenchReport, BenchSettings, LatencyStats, ReferenceCheck
from .cache_debug import CacheCheck, CacheDivergence
from .decode_bench import DecodeBench, DecodeTiming
from .export import (
    ConversionResult,
    ExportedAxis,
    OptimizeResult,
    RouteAttempt,
    SimplifierCandidate,
    SimplifyResult,
    UpgradeResult,
)
from .frameworks import FrameworkListing
from .generation import GenerationParity, RowVerdict, TokenStep
from .localize import Divergence, LayerCheck, Localization, Repro, SourceLine, StageCheck
from .model_info import ModelInfo, TargetCheck
from .parity import (
    ERROR_BIN_EDGES,
    AxisOutcome,
    AxisVerdict,
    CaseKind,
    OracleDistances,
    OracleSummary,
    OutputParity,
    ParityCase,
    ParityReport,
    PlacedNode,
    Placement,
    Side,
    ToleranceUsed,
)
from .serialize import mapping_plain, to_plain
from .variants import GenerationJudgement, KeptNode, OutputAccuracy, VariantResult, VariantsReport, VariantStatus

__all__ = [
    "ERROR_BIN_EDGES",
    "ToleranceUsed",
    "RouteAttempt",
    "ConversionResult",
    "SimplifyResult",
    "OptimizeResult",
    "UpgradeResult",
    "ExportedAxis",
    "OutputParity",
    "OracleDistances",
    "OracleSummary",
    "CaseKind",
    "Side",
    "AxisOutcome",
    "AxisVerdict",
    "ParityCase",
    "ParityReport",
    "PlacedNode",
    "Placement",
    "LatencyStats",
    "BenchCase",
    "BenchSettings",
    "ReferenceCheck",
    "BenchReport",
    "ModelInfo",
    "TargetCheck",
    "FrameworkListing",
    "SourceLine",
    "LayerCheck",
    "Divergence",
    "StageCheck",
    "Repro",
    "Localization",
    "Report",
    "to_plain",
    "VariantStatus",
    "OutputAccuracy",
    "GenerationJudgement",
    "KeptNode",
    "VariantResult",
    "VariantsReport",
    "SimplifierCandidate",
    "GenerationParity",
    "RowVerdict",
    "TokenStep",
    "DecodeBench",
    "DecodeTiming",
    "CacheCheck",
    "CacheDivergence",
]


@dataclass(frozen=True)
class Report:
    """The whole run, as written to JSON / Markdown / HTML."""

    command: str
    source: str | None = None
    framework: str | None = None
    output: str | None = None
    conversion: ConversionResult | None = None
    simplify: SimplifyResult | None = None
    optimize: OptimizeResult | None = None
    validation: ParityReport | None = None
    bench: BenchReport | None = None
    upgrade: UpgradeResult | None = None
    variants: VariantsReport | None = None
    localization: Localization | None = None
    generation: GenerationParity | None = None  # with-past exports: token-by-token generation parity
    decode_bench: DecodeBench | None = None  # bench OUT_DIR: prefill and decode speed of a with-past folder
    cache_divergence: CacheDivergence | None = None  # debug FOLDER OUT_DIR: the first diverging cache layer
    timings: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    peak_rss_bytes: dict[str, int] = field(default_factory=dict)  # per stage (load, export, simplify, ...)

    @property
    def passed(self) -> bool | None:
        """Parity verdict of the run (expected outputs an upgraded model shipped with included), or None
        when nothing was validated."""
        golden = self.upgrade.golden if self.upgrade is not None else None
        verdicts = [
            r.passed for r in (self.validation, golden, self.generation, self.cache_divergence) if r is not None
        ]
        return None if not verdicts else all(verdicts)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (schema: docs/schema/report.schema.json)."""
        from .._version import __version__

        conv = self.conversion
        d: dict[str, Any] = {
            "onnxbridge_version": __version__,
            "command": self.command,
            "source": self.source,
            "framework": self.framework or (conv.framework if conv else None),
            "route": conv.route if conv else None,
            "routes_tried": list(conv.attempts) if conv else [],
            "route_order": list(conv.route_order) if conv else [],
            "routes_not_tried": list(conv.not_tried) if conv else [],
            "output": self.output,
            "opset": conv.opset if conv else None,
            "inputs": list(conv.input_names) if conv else None,
            "outputs": list(conv.output_names) if conv else None,
            "axis_ranges": list(conv.axis_ranges) if conv else [],
            "simplify": self.simplify,
            "validation": self.validation,
            "bench": self.bench,
            "timings": dict(self.timings),
            "peak_rss_bytes": dict(self.peak_rss_bytes),
            "notes": list(self.notes) + (list(conv.notes) if conv else []),
            "passed": self.passed,
        }
        if self.optimize is not None:
            d["optimize"] = self.optimize
        if self.upgrade is not None:
            d["upgrade"] = {**to_plain(self.upgrade), "replaced": self.upgrade.replaced}
        if self.variants is not None:
            d["variants"] = self.variants
        if self.localization is not None:
            d["localization"] = self.localization
        if self.generation is not None:
            d["generation"] = {
                **to_plain(self.generation),
                "passed": self.generation.passed,
                "summary": self.generation.summary(),
            }
        if self.decode_bench is not None:
            d["decode_bench"] = self.decode_bench
        if self.cache_divergence is not None:
            d["cache_divergence"] = {
                **to_plain(self.cache_divergence),
                "passed": self.cache_divergence.passed,
                "summary": self.cache_divergence.summary(),
            }
        return mapping_plain(d)

    def write(self, path: str | Path) -> Path:
        """Write the report; the format follows the suffix (.json, .md, .html)."""
        from ..report import write_report

        return write_report(self, Path(path))
