"""Runners share one small protocol: ``name``, ``output_names``, ``run(feeds) -> list of arrays``."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from .._util import first_line
from ..errors import InputError, OnnxBridgeError, UsageError
from ..onnxio import load_onnx, session_payload
from ..results import Placement
from .placement import ProfileCapture
from .providers import create_session

if TYPE_CHECKING:
    import onnx

__all__ = ["Runner", "OrtRunner"]

_ORT_DTYPES: dict[str, np.dtype] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(double)": np.dtype(np.float64),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
}


class Runner(Protocol):
    """Anything that turns named numpy inputs into an ordered list of numpy outputs."""

    name: str

    @property
    def output_names(self) -> tuple[str, ...]: ...

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]: ...


class OrtRunner:
    """An ONNX Runtime session on the provider asked for; the provider that really runs is kept."""

    def __init__(
        self,
        model: onnx.ModelProto | str | Path,
        provider: str = "auto",
        *,
        options: Any = None,
        path: str | Path | None = None,
        profile: bool = False,
        fallback: str = "warn",
        name: str | None = None,
    ) -> None:
        """``profile=True`` records where each node really runs during the first run
        (:attr:`placement`); ``fallback`` is the policy stamped on it (see ``placement.py``); ``name``
        names the runner in reports (default ``onnxruntime[PROVIDER]``)."""
        if isinstance(model, (str, Path)):
            path = Path(model)
            model = load_onnx(path)
        self.model = model
        payload = session_payload(model, path)  # a path was checked by load_onnx, data paths included
        self.placement: Placement | None = None
        self._fallback = fallback
        self._capture = ProfileCapture(options) if profile else None
        if self._capture is not None:
            weakref.finalize(self, self._capture.cleanup)
            options = self._capture.options()
        try:
            self.session, self.provider = create_session(payload, provider, options=options)
        except Exception as e:
            if self._capture is not None:
                self._capture.cleanup()
            if isinstance(e, OnnxBridgeError):
                raise
            from .support import check_runtime_support

            check_runtime_support(model, path or "the ONNX model")  # a model from the future says so
            raise InputError(
                f"ONNX Runtime cannot load the model: {first_line(e)}",
                "the graph may use ops or types onnxruntime does not support; try another --opset",
            ) from e
        self.name = name or f"onnxruntime[{self.provider.used}]"
        self.inputs = self.session.get_inputs()
        self._input_dtypes = {i.name: _ORT_DTYPES[i.type] for i in self.inputs if i.type in _ORT_DTYPES}

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.session.get_outputs())

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        outs = list(self.session.run(None, self._feeds(feeds)))
        if self._capture is not None:
            capture, self._capture = self._capture, None
            self.placement = capture.collect(self.session, self.provider.used, self._fallback, self.model)
        return outs

    def fetch(self, feeds: dict[str, np.ndarray], names: Sequence[str]) -> dict[str, np.ndarray]:
        """Only the outputs ``names`` (intermediate values marked as graph outputs, for localisation)."""
        names = list(names)
        return dict(zip(names, self.session.run(names, self._feeds(feeds)))) if names else {}

    def _feeds(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The feeds the session takes, cast to its widths; missing inputs are a ``UsageError``."""
        names = {i.name for i in self.inputs}
        missing = names - set(feeds)
        if missing:
            raise UsageError(
                f"inputs missing for the ONNX model: {', '.join(sorted(missing))} "
                f"(given: {', '.join(sorted(feeds)) or 'none'})",
                "name the inputs as the ONNX graph does (onnxbridge inspect MODEL.onnx)",
            )
        return {k: self._cast(k, v) for k, v in feeds.items() if k in names}

    def _cast(self, name: str, value: np.ndarray) -> np.ndarray:
        """Feeds of another float (or int) width are cast to the width the session declares, so two
        models with float16 and float32 inputs can share one set of inputs; anything else is left for
        ONNX Runtime to refuse."""
        want = self._input_dtypes.get(name)
        value = np.asarray(value)
        if want is None or value.dtype == want:
            return value
        same_kind = (np.issubdtype(value.dtype, np.floating) and np.issubdtype(want, np.floating)) or (
            np.issubdtype(value.dtype, np.integer) and np.issubdtype(want, np.integer)
        )
        return value.astype(want) if same_kind else value
