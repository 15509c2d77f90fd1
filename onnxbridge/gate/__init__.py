"""The pre-commit / CI gate: ``onnxbridge check`` over the models a project declares.

``check`` is the only entry point most users need; the manifest, cache and result types are
exported for tools built on top of it. Importing this package imports no framework, no onnx and
no onnxruntime: an unchanged project is checked from file hashes alone.
"""

from __future__ import annotations

from .check import check
from .manifest import Manifest, ManifestError, ModelEntry, find_manifest, load_manifest
from .results import CheckReport, ModelResult, Worst

__all__ = [
    "check",
    "CheckReport",
    "ModelResult",
    "Worst",
    "Manifest",
    "ManifestError",
    "ModelEntry",
    "find_manifest",
    "load_manifest",
]
