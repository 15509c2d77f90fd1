"""Runners share one small protocol: ``name``, ``output_names``, ``run(feeds) -> list of arrays``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import InputError, UsageError
from ..onnxio import TWO_GB, load_onnx, value_infos
from .providers import ProviderChoice, create_session

if TYPE_CHECKING:
    import onnx

__all__ = ["Runner", "OrtRunner"]


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
    ) -> None:
        if isinstance(model, (str, Path)):
            path = Path(model)
            model = load_onnx(path)
        self.model = model
        if model.ByteSize() < TWO_GB:
            payload: bytes | str = model.SerializeToString()
        elif path is not None:  # already checked by load_onnx, data paths included
            payload = str(path)
        else:
            raise UsageError("a model over 2 GB must be validated from a file", "save it first, then validate")
        try:
            self.session, self.provider = create_session(payload, provider, options=options)
        except Exception as e:
            from ..errors import OnnxBridgeError

            if isinstance(e, OnnxBridgeError):
                raise
            raise InputError(
                f"ONNX Runtime cannot load the model: {str(e).strip().splitlines()[0][:300]}",
                "the graph may use ops or types onnxruntime does not support; try another --opset",
            ) from e
        self.name = f"onnxruntime[{self.provider.used}]"
        self.inputs = [i for i in self.session.get_inputs()]
        init = {i.name for i in model.graph.initializer}
        self.input_infos = value_infos([i for i in model.graph.input if i.name not in init])

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.session.get_outputs())

    @property
    def provider_choice(self) -> ProviderChoice:
        return self.provider

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        names = {i.name for i in self.inputs}
        missing = names - set(feeds)
        if missing:
            raise UsageError(
                f"inputs missing for the ONNX model: {', '.join(sorted(missing))} "
                f"(given: {', '.join(sorted(feeds)) or 'none'})",
                "name the inputs as the ONNX graph does (onnxbridge inspect MODEL.onnx)",
            )
        return list(self.session.run(None, {k: v for k, v in feeds.items() if k in names}))
