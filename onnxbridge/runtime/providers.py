"""ONNX Runtime sessions on the provider asked for, and the truth about which one runs.

onnxruntime-gpu lists CUDAExecutionProvider as *available* even where CUDA cannot start, then
silently runs on CPU. We read the providers back from the session and name the missing piece.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import io
import os
import sysconfig
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ProviderError, UsageError
from ..options import PROVIDERS  # the provider names, spelled once
from ..options.providers import CPU, CUDA, TENSORRT, Provider, is_gpu

__all__ = ["PROVIDERS", "Provider", "ProviderChoice", "create_session", "diagnose_cuda", "short_provider"]

# what a session asks ONNX Runtime for, best first, per request (auto aims at CUDA)
_WANTED = {"cpu": (CPU,), "cuda": (CUDA, CPU), "auto": (CUDA, CPU), "tensorrt": (TENSORRT, CUDA, CPU)}


@dataclass(frozen=True)
class ProviderChoice:
    """What was asked for, what really runs, and why anything else was not used."""

    requested: str
    used: str
    session_providers: tuple[str, ...]
    note: str | None = None

    @property
    def provider(self) -> Provider:
        """The provider that really runs, as a typed value."""
        return Provider.from_ort(self.used)


def short_provider(ep: str) -> str:
    """CUDAExecutionProvider -> cuda (a provider we do not know keeps its name)."""
    return Provider.from_ort(ep).name


def create_session(
    model: bytes | str | Path,
    requested: str = "auto",
    *,
    options: Any = None,
    provider_options: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[Any, ProviderChoice]:
    """An ``InferenceSession`` on ``requested`` and the ``ProviderChoice`` read back from it.

    ``model`` is serialized ONNX bytes (preferred: the file was already checked by ``onnx.load``)
    or a path. An explicitly named provider that does not really run raises ``ProviderError``;
    ``auto`` falls back to CPU and says why in ``note``. ``provider_options`` maps a short provider
    name (``tensorrt``, ``cuda``) to that provider's options (e.g. ``runtime.tensorrt.provider_options``).
    """
    import onnxruntime as ort

    requested = (requested or "auto").lower()
    if requested not in PROVIDERS:
        raise UsageError(f"unknown provider {requested!r}", f"use one of {', '.join(PROVIDERS)}")
    available = ort.get_available_providers()
    wanted = [p.ort for p in _WANTED[requested]]
    target = wanted[0]
    explicit_gpu = is_gpu(requested)

    if explicit_gpu and target not in available:
        raise ProviderError(
            f"--provider {requested}: {target} is not in this onnxruntime build (available: {', '.join(available)})",
            "install onnxruntime-gpu (not onnxruntime) in this environment, or use --provider cpu",
        )
    if requested == "auto" and CUDA.ort not in available:
        wanted = [CPU.ort]

    model_arg = model if isinstance(model, bytes) else str(model)
    with _quiet_ort(ort):
        session = ort.InferenceSession(
            model_arg, sess_options=options, providers=_with_options(wanted, available, provider_options)
        )
    running = tuple(session.get_providers())
    used = running[0] if running else CPU.ort
    if explicit_gpu and target not in running:
        raise ProviderError(
            f"--provider {requested}: {target} is listed as available but did not start: {diagnose_cuda()}",
            "install the NVIDIA driver and the CUDA / cuDNN libraries onnxruntime-gpu needs "
            "(pip install 'onnxruntime-gpu[cuda,cudnn]'), or use --provider cpu",
        )
    note = None
    if requested == "auto" and used == CPU.ort and CUDA.ort in wanted:
        note = f"auto: CUDA did not start ({diagnose_cuda()}); ran on CPU"
    return session, ProviderChoice(requested, used, running, note)


def _with_options(
    wanted: list[str], available: list[str], options: Mapping[str, Mapping[str, str]] | None
) -> list[str | tuple[str, dict[str, str]]]:
    """The providers to ask for, each with its options when some were given."""
    by_ep = {p.ort: dict(v) for k, v in (options or {}).items() if (p := Provider.named(k)) is not None}
    return [(p, by_ep[p]) if p in by_ep else p for p in wanted if p in available]


@contextlib.contextmanager
def _quiet_ort(ort: Any) -> Iterator[None]:
    """Keep onnxruntime's provider-bridge error spew off the user's terminal (its C++ log, and the Python
    ``print`` of "EP Error ... Falling back" that would land in ``--json`` output); we report it ourselves."""
    ort.set_default_logger_severity(4)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        ort.set_default_logger_severity(2)


def _cuda_major() -> str:
    try:
        from onnxruntime.capi import build_and_package_info as info

        return str(getattr(info, "cuda_version", "") or "").split(".")[0]
    except Exception:
        return ""


def _try_load(name: str) -> bool:
    try:
        ctypes.CDLL(name)
        return True
    except OSError:
        pass
    # onnxruntime-gpu's optional pip extras put the libraries under site-packages/nvidia/*/lib
    site = sysconfig.get_paths()["purelib"]
    for path in glob.glob(os.path.join(site, "nvidia", "*", "lib", name)):
        try:
            ctypes.CDLL(path)
            return True
        except OSError:
            continue
    return False


def cuda_libraries() -> tuple[tuple[str, ...], str]:
    """(the shared libraries onnxruntime-gpu's CUDA provider loads, driver first: libcuda, then the CUDA,
    cuBLAS and cuDNN libraries of its CUDA major version; that version)."""
    major = _cuda_major() or "12"
    return (
        "libcuda.so.1",
        f"libcudart.so.{major}",
        f"libcublasLt.so.{major}",
        f"libcublas.so.{major}",
        "libcudnn.so.9",
    ), major


def diagnose_cuda() -> str:
    """Name the first missing piece CUDA needs: the driver, then the CUDA, cuBLAS and cuDNN libraries."""
    if os.name == "nt":  # pragma: no cover - Windows naming differs; keep the generic message
        return "CUDA could not be initialised (check the NVIDIA driver, CUDA and cuDNN installs)"
    (driver, *libs), major = cuda_libraries()
    if not _try_load(driver):
        return f"the NVIDIA driver library {driver} was not found (no GPU driver on this machine?)"
    for lib in libs:
        if not _try_load(lib):
            return f"{lib} (needed by onnxruntime-gpu built for CUDA {major}) was not found"
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        count = ctypes.c_int(0)
        if cuda.cuInit(0) != 0 or cuda.cuDeviceGetCount(ctypes.byref(count)) != 0 or count.value == 0:
            return "the NVIDIA driver is installed but reports no usable GPU"
    except Exception:  # pragma: no cover - defensive
        pass
    return "CUDA libraries were found but the CUDA provider still failed to start (version mismatch?)"
