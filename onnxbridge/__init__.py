"""onnxbridge: from PyTorch, TensorFlow or Keras to a verified, simplified, benchmarked ONNX model.

The public API is the verbs below; each returns a :class:`Report`. Heavy frameworks are imported
only when a verb needs them, so ``import onnxbridge`` stays fast.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .errors import (
    ConversionError,
    InputError,
    OnnxBridgeError,
    ParityError,
    ProviderError,
    UnsafeInputError,
    UsageError,
)
from .results import ConversionResult, ParityReport, Report, RouteAttempt, SimplifyResult
from .specs import TensorSpec, parse_input_spec

__all__ = [
    "__version__",
    "convert",
    "simplify",
    "validate",
    "debug",
    "inspect",
    "bench",
    "variant",
    "check",
    "frameworks",
    "upgrade",
    "generate",
    "Report",
    "ConversionResult",
    "SimplifyResult",
    "ParityReport",
    "RouteAttempt",
    "TensorSpec",
    "parse_input_spec",
    "OnnxBridgeError",
    "UsageError",
    "InputError",
    "UnsafeInputError",
    "ProviderError",
    "ConversionError",
    "ParityError",
]

_LAZY = {
    "convert": "onnxbridge.api",
    "simplify": "onnxbridge.api",
    "validate": "onnxbridge.api",
    "debug": "onnxbridge.api",
    "inspect": "onnxbridge.api",
    "bench": "onnxbridge.api",
    "variant": "onnxbridge.api",
    "check": "onnxbridge.gate",
    "frameworks": "onnxbridge.api",
    "upgrade": "onnxbridge.api",
    "generate": "onnxbridge.generation.text",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'onnxbridge' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
