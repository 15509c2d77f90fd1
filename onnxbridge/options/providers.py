"""The ONNX Runtime execution providers we run on, each one typed value: its ``--provider`` name, its
ONNX Runtime name, whether it runs on a GPU. Every module that asks "is this a GPU?" or shortens a
provider's name goes through here (``--provider auto`` is a request, not a provider: it has no value).

Nothing here imports onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Provider", "CPU", "CUDA", "TENSORRT", "KNOWN_PROVIDERS", "is_gpu", "provider_label"]

_SUFFIX = "ExecutionProvider"


@dataclass(frozen=True)
class Provider:
    """One execution provider: ``name`` as ``--provider`` spells it (``cuda``), ``ort`` as ONNX Runtime
    spells it (``CUDAExecutionProvider``), and whether its tensors live on a GPU."""

    name: str
    ort: str
    is_gpu: bool

    @property
    def label(self) -> str:
        """The ONNX Runtime name without ``ExecutionProvider`` (``CUDA``), as reports print it."""
        return self.ort.removesuffix(_SUFFIX)

    @property
    def device(self) -> str:
        """Where its inputs and outputs live: ``cuda`` or ``cpu`` (ONNX Runtime's and torch's device name)."""
        return "cuda" if self.is_gpu else "cpu"

    @staticmethod
    def named(text: str) -> Provider | None:
        """The provider ``text`` names, as ``--provider`` (``cuda``) or ONNX Runtime (``CUDAExecutionProvider``)
        spells it; ``None`` for ``auto`` and for names we do not run on."""
        return _BY_NAME.get(text) or _BY_NAME.get(text.lower())

    @staticmethod
    def from_ort(ep: str) -> Provider:
        """The provider an ONNX Runtime session reports; one we do not know keeps its name and is not a GPU."""
        return _BY_NAME.get(ep) or Provider(ep, ep, False)


CPU = Provider("cpu", "CPUExecutionProvider", False)
CUDA = Provider("cuda", "CUDAExecutionProvider", True)
TENSORRT = Provider("tensorrt", "TensorrtExecutionProvider", True)
KNOWN_PROVIDERS = (CPU, CUDA, TENSORRT)
_BY_NAME = {**{p.name: p for p in KNOWN_PROVIDERS}, **{p.ort: p for p in KNOWN_PROVIDERS}}


def is_gpu(provider: str | None) -> bool:
    """True when ``provider`` (a ``--provider`` value or an ONNX Runtime name) is a GPU provider;
    ``auto``, ``cpu`` and ``None`` are not."""
    p = Provider.named(provider) if provider else None
    return p is not None and p.is_gpu


def provider_label(ep: str) -> str:
    """``CUDAExecutionProvider`` -> ``CUDA``: the short form reports print."""
    return Provider.from_ort(ep).label
