"""Hypothesis profiles for the loader fuzz harness.

``ci`` (the default): a few dozen inputs per loader, seconds in all, derandomised so CI is stable.
``long``: thousands per loader, random each run: ``scripts/fuzz.sh`` (or ``ONNXBRIDGE_FUZZ=long``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True, suppress_health_check=_SLOW_OK, database=None
)
settings.register_profile(
    "long",
    max_examples=int(os.environ.get("ONNXBRIDGE_FUZZ_EXAMPLES", "2000")),
    deadline=None,
    suppress_health_check=_SLOW_OK,
)
settings.load_profile(os.environ.get("ONNXBRIDGE_FUZZ", "ci"))
