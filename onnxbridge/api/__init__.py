"""The Python API: the verbs ``convert``, ``simplify``, ``validate``, ``debug``, ``inspect``, ``bench``,
``variant``, ``upgrade`` and ``frameworks`` (what the converter registry holds).

Orchestration only; each verb returns a :class:`~onnxbridge.results.Report`. The keyword form
(``convert(source, out, inputs=..., provider=...)``) builds the option objects of
:mod:`onnxbridge.options` once; the ``*_with`` forms take them built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._bench import bench, bench_with
from ._convert import convert, convert_with
from ._debug import debug, debug_with
from ._frameworks import frameworks
from ._onnx import inspect, simplify
from ._stages import load_source as _load_source
from ._upgrade import upgrade, upgrade_with
from ._validate import validate, validate_with
from ._variants import variant, variant_with

if TYPE_CHECKING:
    from ..converters.base import Converter, SourceModel
    from ..options import ExportOptions
    from ..specs import TensorSpec

__all__ = [
    "convert",
    "convert_with",
    "simplify",
    "validate",
    "validate_with",
    "debug",
    "debug_with",
    "inspect",
    "bench",
    "bench_with",
    "load_source",
    "frameworks",
    "upgrade",
    "upgrade_with",
    "variant",
    "variant_with",
]


def load_source(
    source: str,
    *,
    inputs: Sequence[str | TensorSpec] | None = None,
    framework: str | None = None,
    trust_model: bool = False,
    task: str | None = None,
    export: ExportOptions | None = None,
) -> tuple[Converter, SourceModel[object]]:
    """SOURCE -> (converter, SourceModel): the source loaded the way ``convert`` loads it."""
    from ..options import ExportOptions, as_specs

    return _load_source(str(source), export or ExportOptions(as_specs(inputs), framework, None, (), trust_model, task))
