"""Building one variant: fp32 ONNX model in, variant file out, and what was done (the builders are the
kinds' own, ``variants/kinds/``).

A builder that cannot produce its variant raises :class:`VariantUnavailable` with a reason and a hint;
the stage then writes nothing for it and the fp32 model is never touched (builders read it, and write
into a private folder).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._util import Progress, first_line, no_progress
from ..options import Budget
from ..results import KeptNode

if TYPE_CHECKING:
    import numpy as np

    from .kind import VariantKind

__all__ = ["VariantUnavailable", "BuildContext", "Built", "build_variant", "save"]


class VariantUnavailable(Exception):
    """The variant cannot be produced or loaded here: ``reason`` says why, ``hint`` what to do."""

    def __init__(self, reason: str, hint: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.hint = reason, hint


@dataclass(frozen=True)
class BuildContext:
    """What a builder may need: the provider the variant will run on, calibration / search cases, the
    budget (the fp16 search is judged by it) and the calibration method."""

    provider: str
    calibration: Sequence[Mapping[str, np.ndarray]]
    budget: Budget
    margin: float
    method: str = "minmax"
    threads: int | None = None
    progress: Progress = no_progress


@dataclass(frozen=True)
class Built:
    """A variant file, one line on how it was made, the builder's facts, and the nodes kept in fp32."""

    path: Path
    method: str
    details: dict[str, Any] = field(default_factory=dict)
    kept: tuple[KeptNode, ...] = ()
    seconds: float = 0.0


def save(model, path: Path) -> None:
    """Write a builder's ONNX model (external data beside it when it is over 2 GB)."""
    from ..onnxio import save_onnx

    save_onnx(model, path)


def build_variant(kind: VariantKind, model, src: Path, dst: Path, ctx: BuildContext) -> Built:
    """Build ``kind`` from ``model`` (read from ``src``) into ``dst``; any tool failure is
    :class:`VariantUnavailable`."""
    t0 = time.perf_counter()
    try:
        built = kind.build(model, src, dst, ctx)
    except VariantUnavailable:
        raise
    except Exception as e:  # each tool fails its own way: a failure is a reason, not a traceback
        raise VariantUnavailable(f"{kind.name}: {first_line(e)}", "rerun with --debug for the tool's traceback") from e
    if kind.must_quantise is not None:
        import onnx

        from .quantize import quantized_ops

        ops = quantized_ops(onnx.load(str(dst), load_external_data=False))
        if not ops:
            raise VariantUnavailable(
                f"{kind.name}: nothing was quantised (no {kind.must_quantise} the tool handles)",
                kind.empty_hint or None,
            )
        built.details["quantized_ops"] = ops
    return Built(built.path, built.method, built.details, built.kept, time.perf_counter() - t0)
