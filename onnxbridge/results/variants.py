"""Results of the deployment-variant stage: per variant its accuracy, speed, size and verdict."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .bench import LatencyStats
from .table import Table

__all__ = ["VariantStatus", "OutputAccuracy", "KeptNode", "GenerationJudgement", "VariantResult", "VariantsReport"]


class VariantStatus(str, enum.Enum):
    """What became of one variant."""

    PASSED = "passed"  # within its budget and fast enough: written
    REFUSED = "refused"  # over its budget or too slow: not written
    FORCED = "forced"  # failed its gate but written anyway (--write-failed), marked FAIL
    UNAVAILABLE = "unavailable"  # could not be produced or loaded here (no kernel, a tool failed): nothing written


@dataclass(frozen=True)
class OutputAccuracy:
    """One output of a variant against the reference, over every evaluation case.

    ``cosine`` is the worst case's cosine of the flattened output; ``cosine_min`` the worst row (last
    axis); agreements are pooled over the rows of every case: ``top1`` plain argmax agreement (per
    position for ``[batch, seq, classes]``), ``top1_decisive`` the same over rows whose reference top-2
    gap is at least ``decisive_margin`` row standard deviations, ``top5`` reference argmax within the
    variant's top 5; ``nonfinite`` counts NaN / Inf where the reference is finite.
    """

    name: str
    max_abs: float
    cosine: float
    cosine_min: float
    top1: float | None = None
    top1_decisive: float | None = None
    top5: float | None = None
    decisive_rows: int = 0
    rows: int = 0
    nonfinite: int = 0

    def value(self, metric: str) -> float | None:
        """The metric of that name; None for the generation metrics (a folder's, not an output's)."""
        if metric not in _OUTPUT_METRICS:
            return None
        value: float | None = getattr(self, metric)  # a metric is one of the fields above
        return value


_OUTPUT_METRICS = ("max_abs", "cosine", "cosine_min", "top1", "top1_decisive", "top5", "nonfinite")


@dataclass(frozen=True)
class GenerationJudgement:
    """A quantised copy of a with-past decoder folder judged on generation against the fp32 folder.

    ``prompts`` prompts cut from the judging text (``eval_text``) are greedy-decoded for ``new_tokens``
    tokens through fp32; the copy is run teacher-forced on fp32's tokens: ``token_agreement`` is the share
    of steps whose argmax is fp32's token, ``drift_per_step`` per step the largest logit change over the
    prompts relative to the range (max - min) of fp32's logits there (``logit_drift`` its maximum,
    ``max_abs_drift`` the largest absolute change), ``first_divergence`` per prompt the first step a free
    greedy run of the copy leaves fp32's (None: never). ``perplexity_ratio`` is the copy's perplexity over
    the ``eval_tokens`` tokens of the text divided by fp32's."""

    prompts: int
    new_tokens: int
    token_agreement: float
    logit_drift: float
    max_abs_drift: float
    drift_per_step: tuple[float, ...]
    first_divergence: tuple[int | None, ...]
    perplexity_fp32: float
    perplexity: float
    perplexity_ratio: float
    eval_tokens: int
    eval_text: str

    def value(self, metric: str) -> float | None:
        """``token_agreement``, ``logit_drift`` or ``perplexity_ratio``; None for an output metric."""
        return {
            "token_agreement": self.token_agreement,
            "logit_drift": self.logit_drift,
            "perplexity_ratio": self.perplexity_ratio,
        }.get(metric)


@dataclass(frozen=True)
class KeptNode:
    """A node the fp16 / bf16 conversion left in fp32, and why.

    ``kind``: ``default-op`` (ONNX Runtime's block list), ``user``, ``overflow`` (non-finite in fp16,
    measured), ``accuracy`` (converting it alone broke the budget), ``search-limit`` (not tried in time).
    """

    name: str
    op_type: str
    kind: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class VariantResult:
    """One variant: where it was written (or why not), its accuracy against its budget, its speed
    against fp32 (and the source's eager model) on the same provider in the same run, and its size."""

    kind: str
    status: VariantStatus
    path: str | None
    reasons: tuple[str, ...]
    budget: dict[str, float]
    accuracy: tuple[OutputAccuracy, ...] = ()
    latency: LatencyStats | None = None
    speedup_vs_fp32: float | None = None
    speedup_vs_eager: float | None = None
    min_speedup: float | None = None
    size_bytes: int | None = None
    size_ratio: float | None = None
    build_s: float = 0.0
    method: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    kept_fp32: tuple[KeptNode, ...] = ()
    notes: tuple[str, ...] = ()
    table: Table | None = None  # the kind's own table for the reports (the ORT format's mobile providers)
    generation: GenerationJudgement | None = None  # a with-past folder's copy: judged on generation

    @property
    def passed(self) -> bool:
        return self.status is VariantStatus.PASSED

    def to_dict(self) -> dict[str, Any]:
        from .serialize import fields_plain

        d = fields_plain(self)
        del d["table"]  # a rendering of ``details``, which the JSON report carries
        return d

    def worst(self, metric: str) -> float | None:
        """The worst value of ``metric`` over the outputs (max for max_abs / nonfinite, else min); a
        folder's copy: its generation figure."""
        if self.generation is not None:
            return self.generation.value(metric)
        values = [v for o in self.accuracy if (v := o.value(metric)) is not None]
        if not values:
            return None
        return max(values) if metric in ("max_abs", "nonfinite") else min(values)


@dataclass(frozen=True)
class VariantsReport:
    """Every variant of one model, measured beside the fp32 model in the same run.

    ``fp32_accuracy`` is the fp32 model's own accuracy against the reference (the source framework, or
    itself when there is none): the baseline the variants are read against."""

    model: str
    reference: str
    provider_requested: str
    provider_used: str
    fp32_size_bytes: int
    fp32_latency: LatencyStats | None
    eager_latency: LatencyStats | None
    fp32_accuracy: tuple[OutputAccuracy, ...]
    variants: tuple[VariantResult, ...]
    inputs: str
    eval_cases: int
    calibration_cases: int
    shapes: dict[str, tuple[int, ...]]
    decisive_margin: float
    timing: dict[str, Any] = field(default_factory=dict)
    load_average: tuple[float, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        """Every variant asked for passed its gate."""
        return all(v.passed for v in self.variants)

    def to_dict(self) -> dict[str, Any]:
        from .serialize import fields_plain

        d = fields_plain(self)
        d["shapes"] = {k: list(v) for k, v in self.shapes.items()}
        d["passed"] = self.passed
        return d
