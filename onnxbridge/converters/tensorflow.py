"""The TensorFlow converter: SavedModel folders, ``.tflite`` files, and Python sources giving a
``tf.Module`` with a ``tf.function``, a ``tf.function``, or a concrete function.

Routes: ``tf2onnx`` (a concrete function through tf2onnx's handlers, driven by :mod:`.tf_graph`)
for SavedModels and functions; ``tf2onnx/tflite`` (``tf2onnx.convert.from_tflite``) for TFLite.
Input names, dtypes and shapes come from the signature when there is one, ``--input`` otherwise.

A SavedModel is a program: loading it builds TensorFlow graphs that may read and write files when
run. Only convert SavedModels you would run.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._util import first_line
from ..errors import InputError, UsageError
from ..parity.inputs import generate_inputs
from ..sources import SourceRef, load_python_object, resolve_factory
from ..specs import TensorSpec
from .axes import name_dynamic_axes
from .base import ExportedModel, ExportRequest, InputDomain, SourceModel, axis_sizes, merge_specs
from .tf_graph import (
    axis_name,
    clean_name,
    concrete_to_onnx,
    flat_output_names,
    quiet_tf,
    rename_tensors,
    start_tensorflow,
    tf2onnx_failing_op,
    tf_signature,
    unique_names,
    user_inputs,
)

__all__ = ["TfConverter", "TfFunctionRoute", "TfliteRoute", "TfFunctionState", "TfliteState"]


@dataclass(frozen=True)
class TfFunctionState:
    """A SavedModel signature or ``tf.function``: the call on positional tensors, the flattened output names,
    and the object that owns the variables (kept alive while the function is)."""

    call: Callable[..., Any]
    output_names: tuple[str, ...]
    owner: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class TfliteState:
    """A ``.tflite`` file: input name -> tensor index, (output name, tensor index) in order, the file's
    tensor names -> the names the signature gives them, and the output names."""

    inputs: Mapping[str, int]
    outputs: tuple[tuple[str, int], ...]
    tensor_names: Mapping[str, str]
    output_names: tuple[str, ...]


TfState = TfFunctionState | TfliteState

SERVING = "serving_default"


def _spec_dims(shape: Any) -> tuple[int | str, ...]:
    dims = [None if d is None or d < 0 else int(d) for d in shape]
    return tuple(axis_name(len(dims), i) if d is None else d for i, d in enumerate(dims))


class TfConverter:
    """TensorFlow SavedModels, TFLite files and ``tf.function`` sources to ONNX."""

    framework = "tensorflow"
    route_names = ("tf2onnx", "tf2onnx/tflite")

    # ---------------------------------------------------------------- loading
    def load(
        self, ref: SourceRef, specs: tuple[TensorSpec, ...] = (), *, trust: bool = False, obj: Any = None
    ) -> SourceModel[TfState]:
        """The function to convert, its input specs and outputs, and export-size inputs."""
        start_tensorflow()
        if ref.kind == "dir" and ref.path is not None:
            owner, fn = _saved_model_signature(ref.path)
        elif ref.path is not None and ref.path.suffix.lower() == ".tflite":
            return self._load_tflite(ref, ref.path, specs)
        elif ref.is_python:
            obj = load_python_object(ref) if obj is None else obj
            owner = resolve_factory(obj, ref.text)[0]
            fn = _function_of(owner, specs, ref.text)
        else:
            raise UsageError(
                f"the TensorFlow converter cannot read {ref.text}",
                "give a SavedModel folder, a .tflite file or file.py:NAME (use --framework keras for Keras files)",
            )
        return self._load_function(ref, fn, specs, owner)

    def _load_function(
        self, ref: SourceRef, cf: Any, specs: tuple[TensorSpec, ...], owner: Any
    ) -> SourceModel[TfState]:
        """``owner`` holds the variables ``cf`` reads: it must live as long as ``cf`` is used."""
        import tensorflow as tf

        args, kwargs = cf.structured_input_signature
        placeholders = user_inputs(cf)
        flat_specs = tf.nest.flatten((args, kwargs))
        if kwargs and not args:
            keys = sorted(kwargs)  # tf.nest order
            found_names = [clean_name(k) for k in keys]
        elif args and not kwargs:
            keys = None
            found_names = [clean_name(s.name or p.name) for s, p in zip(flat_specs, placeholders)]
        else:
            raise UsageError(
                f"{ref.text}: a signature with nested or mixed arguments is not supported",
                "wrap it in a tf.function taking flat tensors",
            )
        found = [
            TensorSpec(n, _spec_dims(s.shape), s.dtype.name) for n, s in zip(unique_names(found_names), flat_specs)
        ]
        specs = merge_specs(found, specs, ref.text)
        sizes = axis_sizes(specs)
        example = generate_inputs(specs, sizes, seed=0)
        if keys is None:

            def call(*xs):
                return cf(*xs)
        else:

            def call(*xs):
                return cf(**dict(zip(keys, xs)))

        try:
            with quiet_tf():
                out = call(*(tf.constant(example[s.name]) for s in specs))
        except Exception as e:
            raise UsageError(
                f"the inputs do not fit {ref.text}: calling it raised {first_line(e, 300)}",
                "check --input shapes and dtypes against the signature",
            ) from e
        return SourceModel(
            self.framework,
            ref.text,
            cf,
            InputDomain.of(specs, sizes, None, example),
            TfFunctionState(call, tuple(flat_output_names(out)), owner),
        )

    def _load_tflite(self, ref: SourceRef, path: Path, specs: tuple[TensorSpec, ...]) -> SourceModel[TfState]:
        inputs, outputs = _read_tflite(path)
        found = [TensorSpec(name, _spec_dims(d["shape_signature"]), d["dtype"].__name__) for name, d in inputs]
        specs = merge_specs(found, specs, ref.text)
        sizes = axis_sizes(specs)
        example = generate_inputs(specs, sizes, seed=0)
        return SourceModel(
            self.framework,
            ref.text,
            path,
            InputDomain.of(specs, sizes, None, example),
            TfliteState(
                inputs={s.name: d["index"] for s, (_, d) in zip(specs, inputs)},
                outputs=tuple((name, d["index"]) for name, d in outputs),
                tensor_names={d["name"]: s.name for s, (_, d) in zip(specs, inputs)}
                | {d["name"]: name for name, d in outputs},
                output_names=tuple(name for name, _ in outputs),
            ),
        )

    # ---------------------------------------------------------------- routes
    def routes(self, loaded: SourceModel[TfState]) -> list:
        return [TfliteRoute()] if isinstance(loaded.state, TfliteState) else [TfFunctionRoute()]

    def reference_runner(self, loaded: SourceModel[TfState]):
        from .tf_runner import TfliteRunner, TfRunner

        state = loaded.state
        if isinstance(state, TfliteState):
            return TfliteRunner(loaded.model, dict(state.inputs), list(state.outputs))
        return TfRunner(state.call, state.output_names, positional=[s.name for s in loaded.specs], name="tensorflow")

    @staticmethod
    def failing_op(e: BaseException) -> str | None:
        return tf2onnx_failing_op(e)


# ------------------------------------------------------------------------------ sources
def _saved_model_signature(path: Path) -> tuple[Any, Any]:
    """(the loaded object, which owns the variables; its serving signature)."""
    import tensorflow as tf

    try:
        with quiet_tf():
            obj = tf.saved_model.load(str(path))
    except Exception as e:
        raise InputError(
            f"{path} is not a readable SavedModel ({first_line(e, 200)})", "re-export it with tf.saved_model.save"
        ) from e
    signatures = dict(getattr(obj, "signatures", {}) or {})
    if SERVING not in signatures:
        others = f" (it has: {', '.join(sorted(signatures))})" if signatures else ""
        raise InputError(
            f"{path} has no serving signature '{SERVING}'{others}",
            "save it with signatures={'serving_default': fn.get_concrete_function(tf.TensorSpec(...))}, "
            "or give the tf.function an input_signature",
        )
    return obj, signatures[SERVING]


def _function_of(obj: Any, specs: tuple[TensorSpec, ...], where: str) -> Any:
    """A concrete function from a ConcreteFunction, a tf.function or a tf.Module's ``__call__``."""
    import tensorflow as tf

    if hasattr(obj, "structured_input_signature") and hasattr(obj, "inputs"):
        return obj  # already concrete
    fn = obj if hasattr(obj, "get_concrete_function") else None
    if fn is None and isinstance(obj, tf.Module):
        call = getattr(obj, "__call__", None)
        fn = call if hasattr(call, "get_concrete_function") else None
        if fn is None and SERVING in (getattr(obj, "signatures", None) or {}):
            return obj.signatures[SERVING]
    if fn is None:
        raise UsageError(
            f"{where} gives a {type(obj).__name__}, not a tf.function, concrete function or tf.Module "
            "whose __call__ is a tf.function",
            "decorate the module's __call__ with @tf.function (with an input_signature), or use --framework keras",
        )
    try:
        with quiet_tf():
            if getattr(fn, "input_signature", None) is not None:
                return fn.get_concrete_function()
            if not specs:
                raise UsageError(
                    f"{where}: the tf.function has no input_signature, so its inputs are unknown",
                    "pass --input NAME:DIMS[:DTYPE] per argument, or give it input_signature=[tf.TensorSpec(...)]",
                )
            return fn.get_concrete_function(*tf_signature(specs))
    except UsageError:
        raise
    except Exception as e:
        raise UsageError(
            f"{where}: tracing the tf.function failed: {first_line(e, 300)}",
            "check --input against the function's arguments",
        ) from e


def _read_tflite(path: Path):
    """([(name, input detail)], [(name, output detail)]) with signature names when present."""
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise InputError(
            f"{path} is not a TFLite flatbuffer (no TFL3 identifier)", "convert the model with tf.lite.TFLiteConverter"
        )
    import tensorflow as tf

    try:
        with quiet_tf(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "tf.lite.Interpreter is deprecated": it still is the reference
            interp = tf.lite.Interpreter(model_path=str(path))
    except Exception as e:
        raise InputError(
            f"{path} is not a readable TFLite model ({first_line(e, 200)})",
            "re-convert it with tf.lite.TFLiteConverter",
        ) from e
    by_index_in = {d["index"]: d for d in interp.get_input_details()}
    by_index_out = {d["index"]: d for d in interp.get_output_details()}
    names_in = {i: clean_name(re.sub(r"^serving_default_", "", d["name"])) for i, d in by_index_in.items()}
    names_out = {i: clean_name(d["name"]) for i, d in by_index_out.items()}
    signatures = interp.get_signature_list()
    if len(signatures) == 1:
        runner = interp.get_signature_runner(next(iter(signatures)))
        for key, d in runner.get_input_details().items():
            names_in[d["index"]] = clean_name(key)
        for key, d in runner.get_output_details().items():
            names_out[d["index"]] = clean_name(key)
    ins = list(zip(unique_names([names_in[i] for i in by_index_in]), by_index_in.values()))
    outs = list(zip(unique_names([names_out[i] for i in by_index_out]), by_index_out.values()))
    return ins, outs


# ------------------------------------------------------------------------------ routes
class TfFunctionRoute:
    """A concrete function through tf2onnx's handlers and optimizers (see :mod:`.tf_graph`)."""

    name = "tf2onnx"

    def export(self, loaded: SourceModel[TfFunctionState], request: ExportRequest) -> ExportedModel:
        names = loaded.state.output_names
        model, notes = concrete_to_onnx(
            loaded.model, [s.name for s in loaded.specs], names, opset=request.opset, name=loaded.source
        )
        return ExportedModel(model, names, notes + name_dynamic_axes(model, loaded.specs))


class TfliteRoute:
    """``tf2onnx.convert.from_tflite``; inputs and outputs renamed after the signature."""

    name = "tf2onnx/tflite"

    def export(self, loaded: SourceModel[TfliteState], request: ExportRequest) -> ExportedModel:
        import tf2onnx

        from .tf_graph import DEFAULT_OPSET

        with quiet_tf(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf2onnx reads the file with the deprecated tf.lite.Interpreter
            model, _ = tf2onnx.convert.from_tflite(str(loaded.model), opset=request.opset or DEFAULT_OPSET)
        rename_tensors(model, dict(loaded.state.tensor_names))
        names = loaded.state.output_names
        by_name = {o.name: o for o in model.graph.output}
        if set(by_name) == set(names):  # graph outputs in the reference runner's order
            ordered = [type(by_name[n]).FromString(by_name[n].SerializeToString()) for n in names]
            del model.graph.output[:]
            model.graph.output.extend(ordered)
        return ExportedModel(model, names, name_dynamic_axes(model, loaded.specs))
