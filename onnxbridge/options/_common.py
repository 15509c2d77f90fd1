"""Constants the option objects are checked against, and the small checks they share."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import UsageError
from .providers import KNOWN_PROVIDERS

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
    "as_path",
]

PROVIDERS = ("auto", *(p.name for p in KNOWN_PROVIDERS))  # auto, cpu, cuda, tensorrt
FALLBACK_POLICIES = ("warn", "fail")
OPT_LEVELS = ("disable", "basic", "extended", "layout", "all")
IO_BINDING_MODES = ("auto", "on", "off")
REFERENCE_DEVICES = ("auto", "cpu", "cuda")
OPTIMIZE_TARGETS = ("cpu", "cuda")
FUSIONS = ("auto", "bert", "gpt2", "vit")
# Axis names that mean "the batch" (compared lower-cased).
BATCH_AXES = ("batch", "batch_size", "n", "b", "bs")
REPORT_SUFFIXES = (".json", ".md", ".html", ".htm")


def is_batch_axis(name: str) -> bool:
    """True for batch-like axis names (``batch``, ``N``, ``bs`` ...)."""
    return name.lower() in BATCH_AXES


def _choice(value: str | None, allowed: Sequence[str], flag: str) -> str:
    text = (value or "").strip().lower()
    if text not in allowed:
        raise UsageError(f"unknown {flag} {value!r}", f"use one of {', '.join(allowed)}")
    return text


def as_path(value: str | Path | None) -> Path | None:
    """A path option as the option objects hold it ("" and None: not given)."""
    return None if value is None or value == "" else Path(value)
