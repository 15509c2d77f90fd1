"""Frozen option objects and the constants they are checked against, in one place.

Each object is built once, from CLI flags, a manifest entry or API keywords, checks itself on
construction (a bad value is a ``UsageError``, exit 2, before any work starts), and is then passed
down whole: stages take the object that owns their settings, not a list of loose arguments.
Frameworks are not listed here: they come from the converter registry, which plugins extend.

Nothing here imports numpy, onnx, onnxruntime or a framework.
"""

from __future__ import annotations

from ._common import (
    BATCH_AXES,
    FALLBACK_POLICIES,
    FUSIONS,
    IO_BINDING_MODES,
    OPT_LEVELS,
    OPTIMIZE_TARGETS,
    PROVIDERS,
    REFERENCE_DEVICES,
    REPORT_SUFFIXES,
    as_path,
    is_batch_axis,
)
from .plans import ParityPlan, TimingPlan
from .runs import ExecutorOptions, LocalizeOptions
from .stages import (
    BenchConfig,
    ConvertOptions,
    ExportOptions,
    OptimizeOptions,
    ParityConfig,
    UpgradeOptions,
    as_specs,
)
from .tolerances import Tolerance, ToleranceLike, Tolerances, parse_tolerances
from .variants import (
    BUDGET_CEILINGS,
    BUDGET_FLOORS,
    CALIBRATION_METHODS,
    DECISIVE_MARGIN,
    GENERATION_METRICS,
    SIMPLIFIERS,
    Budget,
    VariantOptions,
    budget_limits,
    parse_budget,
)

__all__ = [
    "PROVIDERS",
    "FALLBACK_POLICIES",
    "OPT_LEVELS",
    "IO_BINDING_MODES",
    "REFERENCE_DEVICES",
    "OPTIMIZE_TARGETS",
    "FUSIONS",
    "BATCH_AXES",
    "REPORT_SUFFIXES",
    "is_batch_axis",
    "Tolerance",
    "ToleranceLike",
    "Tolerances",
    "parse_tolerances",
    "ParityPlan",
    "TimingPlan",
    "ExportOptions",
    "ParityConfig",
    "OptimizeOptions",
    "ConvertOptions",
    "UpgradeOptions",
    "BenchConfig",
    "SIMPLIFIERS",
    "BUDGET_FLOORS",
    "BUDGET_CEILINGS",
    "GENERATION_METRICS",
    "DECISIVE_MARGIN",
    "CALIBRATION_METHODS",
    "Budget",
    "parse_budget",
    "VariantOptions",
    "ExecutorOptions",
    "LocalizeOptions",
    "as_path",
    "as_specs",
    "budget_limits",  # what the API's convenience keywords become in the objects above
]
