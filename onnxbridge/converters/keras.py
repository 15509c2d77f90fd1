"""The Keras converter: ``.keras`` and ``.h5`` files and Python sources returning a Keras model.

Routes, tried in order, each candidate validated before it is accepted:

- ``tf2onnx``: the model traced as a ``tf.function`` and converted by tf2onnx's op handlers and
  optimizers, driven by onnxbridge (:mod:`.tf_graph`, several times faster than
  ``tf2onnx.convert.from_keras``);
- ``keras-torch/dynamo``: the model re-loaded in a child process with ``KERAS_BACKEND=torch``
  and exported by ``torch.export`` and the dynamo ONNX exporter (:mod:`.keras_torch`). It
  covers what tf2onnx gets wrong (MultiHeadAttention graphs ONNX Runtime refuses).

Keras, TensorFlow and torch are imported only when a method runs.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._util import first_line
from ..errors import InputError, UnsafeInputError, UsageError
from ..parity.inputs import generate_inputs
from ..sources import SourceRef, fresh_names, load_python_object, resolve_factory
from ..specs import TensorSpec
from .axes import name_dynamic_axes
from .base import ExportedModel, ExportRequest, InputDomain, SourceModel, axis_sizes, merge_specs
from .tf_graph import (
    axis_name,
    clean_name,
    concrete_to_onnx,
    flat_output_names,
    quiet_tf,
    start_tensorflow,
    tf2onnx_failing_op,
    tf_signature,
    unique_names,
)

if TYPE_CHECKING:
    import onnx

    from ..localize.compare import Scorer
    from ..localize.finding import Finding
    from ..runtime.sessions import Runner

__all__ = ["KerasConverter", "KerasState", "KerasTf2OnnxRoute"]


@dataclass(frozen=True)
class KerasState:
    """The Keras converter's state of a loaded source: the call in inference mode, the flattened output
    names, where the model came from (``origin``: ``python``, ``keras-file``, ``h5``; ``path``) and
    whether its file may run code (``trust``: the torch-backend route re-loads it)."""

    call: Callable[..., Any]
    output_names: tuple[str, ...]
    origin: str
    path: str | None = None
    trust: bool = False


_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def _keras3():
    """Keras 3 on the TensorFlow backend (the only backend this process can trace and run)."""
    start_tensorflow()
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise UsageError(
            f"Keras runs on the {backend} backend in this process; onnxbridge reads Keras models with TensorFlow",
            "unset KERAS_BACKEND (onnxbridge runs the torch backend itself, in a child process, when it helps)",
        )
    return keras


def load_keras_file(path: Path, *, trust: bool) -> tuple[Any, str]:
    """A ``.keras`` (Keras 3) or ``.h5`` (tf_keras) file, loaded safely; returns (model, origin)."""
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        return _load_h5(path, trust=trust), "h5"
    if not zipfile.is_zipfile(path):
        raise InputError(
            f"{path} is not a .keras archive (not a zip file)", "re-save the model with model.save('model.keras')"
        )
    keras = _keras3()
    try:
        with quiet_tf():
            model = keras.saving.load_model(str(path), compile=False, safe_mode=not trust)
    except Exception as e:
        _raise_load_error(path, e)
    return model, "keras-file"


def _load_h5(path: Path, *, trust: bool) -> Any:
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic != _HDF5_MAGIC:
        raise InputError(f"{path} is not an HDF5 file", "re-save the model with model.save('model.keras')")
    try:
        import tf_keras
    except ImportError as e:
        raise InputError(
            f"{path} is a legacy HDF5 Keras model, which needs the tf_keras package",
            "pip install tf_keras (the version matching your TensorFlow), or re-save the model as .keras",
        ) from e
    try:
        with quiet_tf():
            return tf_keras.models.load_model(str(path), compile=False, safe_mode=not trust)
    except Exception as e:
        _raise_load_error(path, e)


def _raise_load_error(path: Path, e: Exception):
    text = str(e)
    if "safe_mode" in text or "unsafe_deserialization" in text:
        what = "a Lambda layer" if "Lambda" in text else "Python code"
        raise UnsafeInputError(
            f"{path}: refused to load: the model holds {what}, which would run code when loaded",
            "if you trust the file, pass --trust-model",
        ) from e
    raise InputError(
        f"{path} is not a readable Keras model ({first_line(e, 200)})",
        "re-save it with model.save('model.keras'); custom layers must be importable and registered",
    ) from e


def _walk_layers(layer: Any, seen: set[int] | None = None):
    seen = set() if seen is None else seen
    for sub in getattr(layer, "layers", None) or getattr(layer, "_layers", None) or ():
        if id(sub) in seen:
            continue
        seen.add(id(sub))
        yield sub
        yield from _walk_layers(sub, seen)


def _vocab_size(model: Any) -> int | None:
    sizes = [
        int(lyr.input_dim)
        for lyr in _walk_layers(model)
        if type(lyr).__name__ == "Embedding" and hasattr(lyr, "input_dim")
    ]
    return min(sizes) if sizes else None


def _model_inputs(model: Any) -> list[tuple[str, tuple[int | None, ...], str]] | None:
    """(name, shape, dtype) per input of a functional / built Sequential model; None if unknown."""
    try:
        inputs = list(model.inputs or ())
    except (AttributeError, ValueError):
        return None
    if not inputs:
        return None
    out: list[tuple[str, tuple[int | None, ...], str]] = []
    for t in inputs:
        op = getattr(getattr(t, "_keras_history", None), "operation", None)
        name = getattr(op, "name", None) or getattr(t, "name", None) or f"input_{len(out)}"
        dtype = getattr(t.dtype, "name", None) or str(t.dtype)
        out.append((clean_name(name), tuple(None if d is None else int(d) for d in t.shape), dtype))
    return [(n, s, d) for n, (_, s, d) in zip(unique_names([n for n, _, _ in out]), out)]


def _example_arrays(example: Any, where: str) -> list[np.ndarray] | None:
    if example is None:
        return None
    if isinstance(example, dict):
        example = list(example.values())
    if not isinstance(example, (list, tuple)):
        example = [example]
    arrays = []
    for v in example:
        a = np.asarray(v.numpy() if hasattr(v, "numpy") else v)
        if a.dtype == object:
            raise UsageError(f"{where}: example inputs must be arrays or tensors", "return (model, (array, ...))")
        arrays.append(a)
    return arrays


class KerasConverter:
    """Keras models (Keras 3; tf_keras for legacy ``.h5``) to ONNX."""

    framework = "keras"
    route_names = ("tf2onnx", "keras-torch/dynamo")

    # ---------------------------------------------------------------- loading
    def load(
        self, ref: SourceRef, specs: tuple[TensorSpec, ...] = (), *, trust: bool = False, obj: Any = None
    ) -> SourceModel[KerasState]:
        """The model, built, with its input specs (from the model, or ``--input``) and outputs."""
        example = None
        if ref.is_python:
            _keras3()
            with fresh_names():  # built as in a fresh process: its auto-named inputs too
                obj = load_python_object(ref) if obj is None else obj
                model, example = resolve_factory(obj, ref.text)
            origin = "python"
        elif ref.path is not None and ref.path.is_file():
            model, origin = load_keras_file(ref.path, trust=trust)
        else:
            raise UsageError(
                f"the Keras converter cannot read {ref.text}", "give a .keras or .h5 file, or file.py:NAME"
            )
        if not callable(model) or not hasattr(model, "weights"):
            raise UsageError(
                f"{ref.text} gives a {type(model).__name__}, not a Keras model",
                "NAME must be a keras.Model, or a zero-argument callable returning one (or (model, example_inputs))",
            )
        arrays = _example_arrays(example, ref.text)
        specs, sizes = self._specs(model, specs, arrays, ref.text)
        int_high = _vocab_size(model)
        feeds = (
            {s.name: a.astype(s.dtype, copy=False) for s, a in zip(specs, arrays)}
            if arrays is not None
            else generate_inputs(specs, sizes, seed=0, int_high=int_high)
        )
        from .tf_runner import keras_call

        call = keras_call(model, len(specs))
        out = self._first_call(call, model, specs, feeds, ref.text)
        output_names = flat_output_names(out, getattr(model, "output_names", None) or ())
        if not output_names:
            raise UsageError(f"{ref.text}: the model returned no tensors", "return a tensor, a list or a dict of them")
        notes: tuple[str, ...] = ()
        if origin == "python" and _model_inputs(model) is None:
            notes = ("the model had no input signature; onnxbridge built it by calling it on the example inputs",)
        return SourceModel(
            framework=self.framework,
            source=ref.text,
            model=model,
            domain=InputDomain.of(specs, sizes, int_high, feeds),
            state=KerasState(
                call, tuple(output_names), origin, str(ref.path.resolve()) if ref.path is not None else None, trust
            ),
            notes=notes,
        )

    def _specs(self, model, specs, arrays, where) -> tuple[tuple[TensorSpec, ...], dict[str, int]]:
        declared = _model_inputs(model)
        if declared is not None:
            found = [
                TensorSpec(
                    name, tuple(axis_name(len(shape), i) if d is None else d for i, d in enumerate(shape)), dtype
                )
                for name, shape, dtype in declared
            ]
            specs = merge_specs(found, specs, where)
        elif not specs and arrays is not None:
            specs = tuple(
                TensorSpec(f"input_{i}" if len(arrays) > 1 else "input", tuple(int(d) for d in a.shape), a.dtype.name)
                for i, a in enumerate(arrays)
            )
        elif not specs:
            raise UsageError(
                f"no inputs known for {where}: the model has no input signature (a subclassed model?)",
                "pass --input NAME:DIMS[:DTYPE], e.g. --input x:batch,16, or return (model, example_inputs)",
            )
        if arrays is None:
            return tuple(specs), axis_sizes(specs)
        if len(arrays) != len(specs):
            raise UsageError(
                f"{where}: {len(arrays)} example inputs for {len(specs)} inputs ({', '.join(s.name for s in specs)})",
                "return one example input per model input",
            )
        return tuple(specs), axis_sizes(specs, {s.name: a for s, a in zip(specs, arrays)})

    @staticmethod
    def _first_call(call, model, specs, feeds, where) -> Any:
        """Run the model once: it builds a subclassed model, and proves the inputs fit."""
        import tensorflow as tf

        try:
            with quiet_tf():
                return call(*(tf.constant(feeds[s.name]) for s in specs))
        except Exception as e:
            shapes = ", ".join(f"{k}{list(v.shape)}:{v.dtype}" for k, v in feeds.items())
            raise UsageError(
                f"the inputs do not fit {where}: calling it on {shapes} raised {first_line(e, 300)}",
                "check --input names, shapes and dtypes against the model's inputs",
            ) from e

    # ---------------------------------------------------------------- routes
    def routes(self, loaded: SourceModel[KerasState]) -> list:
        """tf2onnx first; Keras-on-torch for Keras 3 models (not tf_keras ``.h5`` ones)."""
        from .keras_torch import KerasTorchRoute

        if loaded.state.origin == "h5" or type(loaded.model).__module__.startswith("tf_keras"):
            return [KerasTf2OnnxRoute()]
        return [KerasTf2OnnxRoute(), KerasTorchRoute()]

    def reference_runner(self, loaded: SourceModel[KerasState]):
        """Keras eager (TensorFlow backend), inference mode; it can run in float64 (the precision oracle)."""
        from .keras_fp64 import KerasRunner

        return KerasRunner(
            loaded.model, loaded.state.output_names, [s.name for s in loaded.specs], "keras (tensorflow eager)"
        )

    @staticmethod
    def failing_op(e: BaseException) -> str | None:
        return getattr(e, "failing_op", None) or tf2onnx_failing_op(e)

    # ---------------------------------------------------------------- localisation
    layer_unit = "layer calls, in the order they finish"

    def localize_layers(
        self,
        loaded: SourceModel[KerasState],
        runner: Runner,
        feeds: Mapping[str, np.ndarray],
        onnx_model: onnx.ModelProto,
        scorer: Scorer,
        *,
        budget_bytes: int,
        provider: str,
    ) -> Finding:
        """Each layer call of the Keras model against the ONNX values it became (see
        :func:`onnxbridge.localize.keras_side.localize_keras`)."""
        from ..localize.keras_side import localize_keras

        return localize_keras(
            loaded.model,
            loaded.state.call,
            loaded.specs,
            [feeds[s.name] for s in loaded.specs],
            onnx_model,
            feeds,
            scorer,
            budget_bytes=budget_bytes,
            provider=provider,
        )


class KerasTf2OnnxRoute:
    """Trace ``model(x, training=False)`` as a ``tf.function``; convert with tf2onnx's handlers."""

    name = "tf2onnx"

    def export(self, loaded: SourceModel[KerasState], request: ExportRequest) -> ExportedModel:
        import tensorflow as tf

        fn = tf.function(loaded.state.call, input_signature=tf_signature(loaded.specs))
        with quiet_tf():
            cf = fn.get_concrete_function()
        names = loaded.state.output_names
        model, notes = concrete_to_onnx(
            cf,
            [s.name for s in loaded.specs],
            names,
            opset=request.opset,
            name=getattr(loaded.model, "name", "keras model"),
        )
        return ExportedModel(model, names, notes + name_dynamic_axes(model, loaded.specs))
