"""Inputs for the variants: real cases checked against the model's inputs, and ONNX Runtime's
calibration reader over them.

Cases from ``--inputs FILE.npz`` whose names, dtypes, ranks or fixed sizes do not fit the model are an
``InputError`` (exit 2) before any tool runs: ``quantize_static`` would otherwise fail deep inside
calibration with a message about an augmented model the user never saw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    import onnx

__all__ = ["fit_cases", "feeds_reader"]

Feeds = Mapping[str, np.ndarray]


def _declared(model: onnx.ModelProto) -> dict[str, tuple[np.dtype, list[int | None]]]:
    from onnx import helper

    from ..onnxio import graph_inputs

    out = {}
    for vi in graph_inputs(model):
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        out[vi.name] = (np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)), dims)
    return out


def fit_cases(model: onnx.ModelProto, cases: Sequence[tuple[str, Feeds]], where: str) -> list[dict[str, np.ndarray]]:
    """The cases cast to the model's input dtypes (same kind only: float to float, int to int); any
    case that does not fit (a name missing or unknown, another kind, rank or fixed size) is an
    ``InputError`` naming ``where`` (the file), the case and the input."""
    hint = "give one array per model input with the model's rank and fixed sizes (onnxbridge inspect MODEL.onnx)"
    if not cases:
        raise InputError(f"{where} holds no input cases", hint)
    want = _declared(model)
    fitted = []
    for label, case in cases:
        at = f"{where}, case {label}"
        missing, extra = sorted(set(want) - set(case)), sorted(set(case) - set(want))
        if missing or extra:
            raise InputError(
                f"{at}: inputs do not match the model"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(extra)}" if extra else "")
                + f" (model inputs: {', '.join(want)})",
                hint,
            )
        out = {}
        for name, (dtype, dims) in want.items():
            a = np.asarray(case[name])
            if a.dtype.kind != dtype.kind and not (a.dtype.kind in "iu" and dtype.kind in "iu"):
                raise InputError(f"{at}: {name} is {a.dtype}, the model wants {dtype}", hint)
            if a.ndim != len(dims):
                raise InputError(
                    f"{at}: {name} has rank {a.ndim} (shape {list(a.shape)}), the model wants rank {len(dims)}", hint
                )
            for axis, d in enumerate(dims):
                if d and d != a.shape[axis]:
                    raise InputError(f"{at}: {name} axis {axis} is {a.shape[axis]}, the model fixes it at {d}", hint)
            out[name] = a.astype(dtype, copy=False)
        fitted.append(out)
    return fitted


def feeds_reader(cases: Sequence[Feeds]):
    """An ``onnxruntime.quantization.CalibrationDataReader`` over in-memory cases."""
    from onnxruntime.quantization import CalibrationDataReader

    class FeedsReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._cases = [dict(c) for c in cases]
            self._i = 0

        def get_next(self):
            if self._i >= len(self._cases):
                return None
            self._i += 1
            return self._cases[self._i - 1]

        def rewind(self) -> None:
            self._i = 0

        def __len__(self) -> int:
            return len(self._cases)

        def set_range(self, start_index: int, end_index: int) -> None:  # CalibStridedMinMax
            self._cases = self._cases[start_index:end_index]
            self._i = 0

    return FeedsReader()
