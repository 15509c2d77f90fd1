"""TensorFlow / Keras eager and TFLite as reference runners (same protocol as ``OrtRunner``)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TfRunner", "TfliteRunner", "keras_call", "to_numpy_tree"]


def to_numpy_tree(out: Any) -> list[np.ndarray]:
    """Every tensor leaf of a nested output, in ``tf.nest`` order (dict keys sorted), as numpy."""
    import tensorflow as tf

    return [np.asarray(t.numpy() if hasattr(t, "numpy") else t) for t in tf.nest.flatten(out)]


def keras_call(model: Any, n_inputs: int) -> Callable[..., Any]:
    """``model(x)`` for one input, ``model([a, b])`` for several, always in inference mode."""

    def call(*xs: Any) -> Any:
        return model(xs[0] if n_inputs == 1 else list(xs), training=False)

    return call


class TfRunner:
    """Calls a TensorFlow callable (a Keras model, a ``tf.function``, a signature) eagerly.

    ``positional`` names the feeds passed positionally, in order.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        output_names: Sequence[str],
        *,
        positional: Sequence[str] = (),
        name: str = "tensorflow",
    ) -> None:
        self.fn = fn
        self.positional = tuple(positional)
        self._output_names = tuple(output_names)
        self.name = name

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._output_names

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        import tensorflow as tf

        return to_numpy_tree(self.fn(*(tf.constant(feeds[n]) for n in self.positional)))


class TfliteRunner:
    """The TFLite interpreter, resized to each feed's shapes (dynamic axes included)."""

    name = "tflite"

    def __init__(self, path: str | Path, inputs: dict[str, int], outputs: Sequence[tuple[str, int]]) -> None:
        """``inputs``: feed name -> tensor index; ``outputs``: (name, tensor index) in ONNX order."""
        import tensorflow as tf

        self.path = str(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecation notice of tf.lite.Interpreter
            self.interpreter = tf.lite.Interpreter(model_path=self.path)
        self.inputs = dict(inputs)
        self.outputs = list(outputs)
        self._shapes: dict[int, tuple[int, ...]] = {}

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.outputs)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        interp = self.interpreter
        shapes = {idx: tuple(np.shape(feeds[name])) for name, idx in self.inputs.items()}
        if shapes != self._shapes:
            for idx, shape in shapes.items():
                interp.resize_tensor_input(idx, list(shape), strict=False)
            interp.allocate_tensors()
            self._shapes = shapes
        for name, idx in self.inputs.items():
            interp.set_tensor(idx, np.ascontiguousarray(feeds[name]))
        interp.invoke()
        return [np.array(interp.get_tensor(idx)) for _, idx in self.outputs]
