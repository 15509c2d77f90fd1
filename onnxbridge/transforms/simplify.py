"""Simplification: onnxsim (constant folding, onnxoptimizer's fusions), then ONNX shape inference.

The simplified model is kept only when a parity check against the unsimplified one passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._util import first_line
from ..onnxio import TWO_GB, node_count
from ..results import ParityReport, SimplifyResult

if TYPE_CHECKING:
    import onnx

__all__ = ["simplify_model", "run_onnxsim"]


def run_onnxsim(model: onnx.ModelProto) -> onnx.ModelProto:
    """onnxsim on an in-memory model (never a path: files were already checked by onnx.load)."""
    import onnx
    import onnxsim

    from .._util import quiet

    with quiet():
        simplified, ok = onnxsim.simplify(model, check_n=0)
    if not ok:  # pragma: no cover - check_n=0 never reports a failed check
        raise RuntimeError("onnxsim reported a failed check")
    try:
        simplified = onnx.shape_inference.infer_shapes(simplified, data_prop=True)
    except Exception:  # shape inference is a nicety; the simplified model stands without it
        pass
    return simplified


def simplify_model(
    model: onnx.ModelProto, check: Callable[[onnx.ModelProto], ParityReport] | None
) -> tuple[onnx.ModelProto, SimplifyResult]:
    """Simplify ``model``; if it fails or ``check`` finds a parity break, return the original, saying why."""
    before = node_count(model)
    t0 = time.perf_counter()
    if model.ByteSize() > TWO_GB:
        return model, SimplifyResult(False, before, before, 0.0, "model over 2 GB: onnxsim cannot hold it in one protobuf")
    try:
        simplified = run_onnxsim(model)
    except Exception as e:
        return model, SimplifyResult(False, before, before, time.perf_counter() - t0, f"onnxsim failed: {first_line(e)}")
    after = node_count(simplified)
    seconds = time.perf_counter() - t0
    if after > before:
        return model, SimplifyResult(
            False, before, before, seconds, f"onnxsim grew the graph ({before} -> {after} nodes); kept the original"
        )
    if check is None:
        return simplified, SimplifyResult(True, before, after, seconds)
    try:
        report = check(simplified)
    except Exception as e:
        return model, SimplifyResult(
            False, before, before, time.perf_counter() - t0, f"simplified model did not run: {first_line(e)}"
        )
    if not report.passed:
        return model, SimplifyResult(
            False, before, before, time.perf_counter() - t0,
            f"simplified model broke parity ({report.summary()}); kept the unsimplified model", False, report.worst_abs,
        )
    return simplified, SimplifyResult(True, before, after, time.perf_counter() - t0, None, True, report.worst_abs)
