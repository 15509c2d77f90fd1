"""Reports built from real validation runs, shared by the report tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from onnxbridge import api
from onnxbridge.results import Report
from onnxbridge.runtime.placement import parse_profile
from tests.parity import onnx_models


def failing_report(tmp_path: Path) -> Report:
    """validate A.onnx B.onnx where B differs from A in one element of output 'y'."""
    c = np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8)
    a = onnx_models.save(onnx_models.two_outputs(c), tmp_path / "a.onnx")
    c2 = c.copy()
    c2[1, 5] += 0.01
    b = onnx_models.save(onnx_models.two_outputs(c2), tmp_path / "b.onnx")
    return api.validate(str(a), b)


def passing_report_with_fallback(tmp_path: Path) -> Report:
    """A passing MLP run whose placement is swapped for a CUDA one where two nodes fell back."""
    a = onnx_models.save(onnx_models.mlp(), tmp_path / "mlp.onnx")
    report = api.validate(str(a), a)
    events = [
        {"cat": "Node", "name": f"{n}_kernel_time", "args": {"op_name": op, "provider": prov}}
        for n, op, prov in [
            ("mm1", "MatMul", "CUDAExecutionProvider"),
            ("add1", "Add", "CUDAExecutionProvider"),
            ("relu", "Relu", "CPUExecutionProvider"),
            ("mm2", "MatMul", "CPUExecutionProvider"),
            ("add2", "Add", "CUDAExecutionProvider"),
        ]
    ]
    placement = parse_profile(events, "CUDAExecutionProvider")
    v = dataclasses.replace(report.validation, placement=placement)
    return dataclasses.replace(report, validation=v)
