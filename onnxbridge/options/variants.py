"""Options of the deployment variants (``variant --to``, ``convert --variant``) and the simplifier choice."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ._common import PROVIDERS, _choice, as_path
from .plans import TimingPlan

__all__ = [
    "SIMPLIFIERS",
    "BUDGET_FLOORS",
    "BUDGET_CEILINGS",
    "GENERATION_METRICS",
    "DECISIVE_MARGIN",
    "CALIBRATION_METHODS",
    "Budget",
    "parse_budget",
    "budget_limits",
    "VariantOptions",
]

# Simplifiers ``--simplifier`` may name; ``auto`` runs every one installed and keeps the best (transforms/simplifiers.py).
SIMPLIFIERS = ("onnxsim", "onnxslim", "onnxscript", "auto")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
# Budget metrics (variants/accuracy.py): floors (the variant's value must be >= the limit) and ceilings (<=).
# ``token_agreement``, ``logit_drift`` and ``perplexity_ratio`` judge a with-past decoder folder's copy on
# generation (GENERATION_METRICS); the others a single file's outputs.
BUDGET_FLOORS = ("cosine", "cosine_min", "top1", "top1_decisive", "top5", "token_agreement")
BUDGET_CEILINGS = ("max_abs", "nonfinite", "logit_drift", "perplexity_ratio")
GENERATION_METRICS = ("token_agreement", "logit_drift", "perplexity_ratio")
# ``top1_decisive`` counts the rows whose reference top-2 margin is at least this many row standard
# deviations: random-weight models are full of near-ties that any rounding flips (measured: the argmax
# flips of int8 BERT-base had a median margin of 0.015 row-std).
DECISIVE_MARGIN = 0.05


@dataclass(frozen=True)
class Budget:
    """Accuracy limits of one variant against its reference: metric -> limit (see the constants above)."""

    limits: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        limits = dict(self.limits.items() if isinstance(self.limits, Mapping) else self.limits)
        for metric, value in limits.items():
            if metric not in BUDGET_FLOORS + BUDGET_CEILINGS:
                raise UsageError(
                    f"unknown budget metric {metric!r}",
                    f"use {', '.join(BUDGET_FLOORS + BUDGET_CEILINGS)}, e.g. --budget cosine=0.999",
                )
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise UsageError(
                    f"budget {metric}={value!r} must be a finite number >= 0", "e.g. --budget cosine=0.999"
                )
        object.__setattr__(self, "limits", tuple((k, float(v)) for k, v in limits.items()))

    def as_dict(self) -> dict[str, float]:
        return dict(self.limits)

    def describe(self) -> str:
        """``cosine>=0.999, top1_decisive>=0.99`` (or ``none``)."""
        return ", ".join(f"{k}{'>=' if k in BUDGET_FLOORS else '<='}{v:g}" for k, v in self.limits) or "none"


def parse_budget(texts: Sequence[str] | str | None) -> dict[str, float]:
    """``--budget cosine=0.999,top1=0.99`` (repeatable, comma-separated) -> metric -> limit."""
    hint = "write --budget METRIC=VALUE[,METRIC=VALUE], e.g. --budget cosine=0.999,top1_decisive=0.99"
    out: dict[str, float] = {}
    for text in [texts] if isinstance(texts, str) else (texts or ()):
        for part in filter(None, (p.strip() for p in str(text).split(","))):
            metric, sep, value = part.partition("=")
            try:
                number = float(value)
            except ValueError:
                number = None
            if not sep or not metric.strip() or number is None:
                raise UsageError(f"malformed --budget item {part!r}: expected METRIC=NUMBER", hint)
            out[metric.strip()] = number
    Budget(tuple(out.items()))  # checks the metric names and values
    return out


def budget_limits(value: Mapping[str, float] | Sequence[str] | str | None) -> tuple[tuple[str, float], ...]:
    """``--budget`` strings or a mapping as the (metric, limit) pairs :class:`VariantOptions` holds."""
    return tuple(_limits(value).items())


def _limits(value: Any) -> dict[str, float]:
    """Budget limits from ``--budget`` strings, a mapping, or (metric, limit) pairs."""
    if isinstance(value, Mapping):
        return dict(value)
    items: list[Any] = [value] if isinstance(value, str) else list(value or ())  # Budget checks each pair
    if all(isinstance(i, str) for i in items):
        return parse_budget(items)
    return dict(items)


def _variant_kinds(kinds: Sequence[str] | str) -> tuple[str, ...]:
    texts = [kinds] if isinstance(kinds, str) else list(kinds or ())
    out = [k.strip().lower() for t in texts for k in str(t).split(",") if k.strip()]
    if not out:
        raise UsageError("no variant asked for", "name one or more variant kinds, e.g. --to int8 (see --help)")
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class VariantOptions:
    """Which deployment variants to build and how each is gated (``variant --to`` / ``convert --variant``).

    ``kinds`` are names of the variant-kind registry (``variants/registry.py``), checked against it
    before any work (``variants.stage.variant_targets``); each kind holds its own default budget and
    speed rule (``VariantKind.budget_for`` / ``speed_rule``).

    ``budget`` overrides the default limits of every variant asked for; ``min_speedup`` the speed rule
    (0 turns the speed gate off). ``inputs_file`` holds real inputs (fixtures format): its even cases
    calibrate int8-static and drive the fp16 search, its odd cases judge every variant. ``write_failed``
    writes a variant that fails its gate anyway, marked FAIL.

    A with-past decoder folder is judged on generation: ``new_tokens`` greedy tokens for each of
    ``prompts`` prompts cut from the text (``eval_text``, default the bundled one, through the folder's
    tokenizer; or ``eval_ids``, a file of token ids), and the perplexity over that text.
    """

    kinds: tuple[str, ...] = ("int8",)
    provider: str = "cpu"
    budget: tuple[tuple[str, float], ...] = ()
    min_speedup: float | None = None
    write_failed: bool = False
    out_dir: Path | None = None
    output: Path | None = None
    inputs_file: Path | None = None
    calibration_method: str = "minmax"
    calibration_cases: int = 16
    eval_cases: int = 4
    seed: int = 0
    axis_sizes: tuple[tuple[str, int], ...] = ()
    timing: TimingPlan = field(default_factory=lambda: TimingPlan(warmup=3, runs=10))
    rounds: int = 3
    threads: int | None = None
    engine_cache: Path | None = None
    eval_text: Path | None = None
    eval_ids: Path | None = None
    new_tokens: int = 64
    prompts: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", _variant_kinds(self.kinds))
        object.__setattr__(self, "provider", _choice(self.provider or "cpu", PROVIDERS, "provider"))
        object.__setattr__(self, "budget", Budget(tuple(_limits(self.budget).items())).limits)
        if self.min_speedup is not None and not (math.isfinite(self.min_speedup) and self.min_speedup >= 0):
            raise UsageError(
                f"--min-speedup {self.min_speedup} must be a number >= 0", "e.g. --min-speedup 1.2 (0: off)"
            )
        object.__setattr__(
            self, "calibration_method", _choice(self.calibration_method, CALIBRATION_METHODS, "--calibration-method")
        )
        for name in ("calibration_cases", "eval_cases", "rounds", "new_tokens", "prompts"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"{name.replace('_', ' ')} {value!r} must be a positive integer", "e.g. 4")
        for name in ("out_dir", "output", "inputs_file", "engine_cache", "eval_text", "eval_ids"):
            object.__setattr__(self, name, as_path(getattr(self, name)))
        if self.output is not None and len(self.kinds) > 1:
            raise UsageError(
                f"-o names one file but {len(self.kinds)} variants were asked for",
                "give --out-dir DIR for several variants, or one --to",
            )
        self.timing.check()
        sizes = tuple(dict(self.axis_sizes).items())
        for axis, size in sizes:
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise UsageError(f"axis size {axis}={size!r} must be a positive integer", "e.g. --axis seq=128")
        object.__setattr__(self, "axis_sizes", sizes)
        if self.eval_text is not None and self.eval_ids is not None:
            raise UsageError("--eval-text and --eval-ids both given", "give one: a text, or its token ids")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads {self.threads} must be at least 1", "give a positive thread count")
