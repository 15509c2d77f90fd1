"""TensorRT provider options (engine cache, fp16, shape profiles) and the engine build, timed.

ONNX Runtime builds TensorRT engines lazily: at session creation when every input shape is fixed (or
profiles are given), else at the first run of each new shape. The build time is therefore session
creation plus the first run; with ``trt_engine_cache_enable`` the engine is written to the cache folder
and a later session with the same model and shapes loads it instead (a cache hit: ``*.engine`` files
that were there before). onnxruntime-gpu 1.31 loads TensorRT 10 (``libnvinfer.so.10``), not 11.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .providers import ProviderChoice

__all__ = ["TrtSettings", "EngineBuild", "provider_options", "profile_shapes", "missing_libraries", "build_engine"]


@dataclass(frozen=True)
class TrtSettings:
    """TensorRT session settings: the engine (and timing) cache folder, reduced precisions, shape profiles
    (``input_ids:1x128,attention_mask:1x128``), workspace and builder optimisation level (0-5)."""

    cache_dir: Path
    fp16: bool = False
    bf16: bool = False
    int8: bool = False
    timing_cache: bool = True
    workspace_bytes: int | None = None
    builder_optimization_level: int | None = None
    min_shapes: str | None = None
    opt_shapes: str | None = None
    max_shapes: str | None = None


def provider_options(s: TrtSettings) -> dict[str, str]:
    """ONNX Runtime's ``TensorrtExecutionProvider`` options for ``s`` (strings, as the C API takes them).

    Creates the cache folder."""
    Path(s.cache_dir).mkdir(parents=True, exist_ok=True)
    opts: dict[str, Any] = {
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(s.cache_dir),
        "trt_fp16_enable": s.fp16,
        "trt_bf16_enable": s.bf16,
        "trt_int8_enable": s.int8,
    }
    if s.timing_cache:
        opts.update(trt_timing_cache_enable=True, trt_timing_cache_path=str(s.cache_dir))
    if s.workspace_bytes:
        opts["trt_max_workspace_size"] = s.workspace_bytes
    if s.builder_optimization_level is not None:
        opts["trt_builder_optimization_level"] = s.builder_optimization_level
    if s.min_shapes and s.opt_shapes and s.max_shapes:
        opts.update(
            trt_profile_min_shapes=s.min_shapes,
            trt_profile_opt_shapes=s.opt_shapes,
            trt_profile_max_shapes=s.max_shapes,
        )
    return {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in opts.items()}


def profile_shapes(shapes: Mapping[str, Sequence[int]]) -> str:
    """``{"input_ids": (1, 128)}`` -> ``"input_ids:1x128"`` (TensorRT's profile syntax)."""
    return ",".join(f"{name}:{'x'.join(str(int(d)) for d in dims)}" for name, dims in shapes.items())


def missing_libraries(provider: str) -> list[str]:
    """Shared libraries ``cuda`` / ``tensorrt`` need that do not load here (empty: worth a session)."""
    from .providers import _try_load, cuda_libraries

    libs = list(cuda_libraries()[0])
    if provider == "tensorrt":
        libs += ["libnvinfer.so.10", "libnvonnxparser.so.10"]
    return [lib for lib in libs if not _try_load(lib)]


@dataclass(frozen=True)
class EngineBuild:
    """How long TensorRT took to build (or load) the engine, and whether the cache already held it."""

    build_s: float
    engine_files: tuple[str, ...]
    cache_hit: bool


def build_engine(
    model: bytes | str | Path, feeds: Mapping[str, Any], settings: TrtSettings, *, options: Any = None
) -> tuple[Any, ProviderChoice, EngineBuild]:
    """A TensorRT session with its engine built (session creation + first run, timed); returns
    ``(session, ProviderChoice, EngineBuild)``. A TensorRT that does not start is a ``ProviderError``."""
    from .providers import create_session

    cache = Path(settings.cache_dir)
    before = {p.name for p in cache.glob("*.engine")} if cache.is_dir() else set()
    t0 = time.perf_counter()
    session, choice = create_session(
        model, "tensorrt", options=options, provider_options={"tensorrt": provider_options(settings)}
    )
    names = {i.name for i in session.get_inputs()}
    session.run(None, {k: v for k, v in feeds.items() if k in names})
    build_s = time.perf_counter() - t0
    after = tuple(sorted(p.name for p in cache.glob("*.engine")))
    return session, choice, EngineBuild(build_s, after, bool(after) and set(after) <= before)
