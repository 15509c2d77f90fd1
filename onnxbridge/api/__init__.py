"""The Python API: the verbs ``convert``, ``simplify``, ``validate``, ``inspect`` and ``bench``.

Orchestration only; each verb returns a :class:`~onnxbridge.results.Report`.
"""

from __future__ import annotations

from ._bench import bench
from ._convert import convert, inspect, load_source, simplify, validate

__all__ = ["convert", "simplify", "validate", "inspect", "bench", "load_source"]
