"""TensorFlow graphs to ONNX through tf2onnx's op handlers, without tf2onnx's slow driver.

``tf2onnx.convert.from_keras`` spends most of its time copying weights, not converting ops.
Profiled on keras.applications ResNet50 (64x64) it took 45 s under cProfile (19 s plain):

- 12 s in ``copy.deepcopy(graph)``: ``optimize_graph`` snapshots the whole graph, weights
  included, before each of its 12 optimizers, on every iteration, to restore it if one raises;
- 8 s in ``Node.update_proto``: each optimizer re-copies every Const tensor into the protobuf;
- 11 s in ``convert_variables_to_constants_v2``, which builds a whole new concrete function
  (prune + lift_to_graph + import) that tf2onnx only turns back into a GraphDef.

:func:`concrete_to_onnx` runs the same stages, in the same order, with the same handlers and
optimizers: freeze to a GraphDef without the round trip, grappler as tf2onnx configures it,
``process_tf_graph`` with the large constants held outside the protobuf, then the optimizer
passes on the graph in place (one proto update, at the end). If an optimizer raises, it redoes
that stage the way tf2onnx does (snapshot and skip the failing optimizer). Same graph, same
numbers, 5-8x faster on those models (``bench/bench_keras.py``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..specs import TensorSpec

if TYPE_CHECKING:
    import onnx

    from .._util import Captured

__all__ = [
    "DEFAULT_OPSET",
    "MAX_OPSET",
    "quiet_tf",
    "clean_name",
    "unique_names",
    "concrete_to_onnx",
    "rename_tensors",
    "tf2onnx_failing_op",
    "axis_name",
    "user_inputs",
    "tf_signature",
    "flat_output_names",
]

# tf2onnx 1.17 knows opsets up to 18; the newest every tool in the chain supports.
MAX_OPSET = 18
DEFAULT_OPSET = 18
_MAX_ITERATIONS = 20  # optimizer sweeps; tf2onnx loops until no optimizer changes anything


def quiet_tf() -> contextlib.AbstractContextManager[Captured]:
    """Keep TensorFlow's, tf2onnx's and Keras' logging and prints off stdout/stderr."""
    from .._util import TF_LOGGERS, quiet

    return quiet(TF_LOGGERS)


def start_tensorflow():
    """TensorFlow, imported and its platform started with their C++ lines (oneDNN, CUDA stubs, cuInit,
    CPU features) kept off the terminal: TensorFlow writes them at import and at first device use,
    whatever ``TF_CPP_MIN_LOG_LEVEL`` says."""
    with quiet_tf():
        import tensorflow as tf

        tf.config.list_physical_devices()
    return tf


def clean_name(name: str, prefix: str = "input") -> str:
    """A tensor name usable in ONNX and as a TensorFlow op name: no ``:0``, no odd characters."""
    name = re.sub(r"[^A-Za-z0-9_.\-/]", "_", name.split(":")[0]) or prefix
    return name if re.match(r"[A-Za-z_]", name) else f"{prefix}_{name}"


def unique_names(names: Sequence[str]) -> list[str]:
    """``names`` with repeats suffixed by ``_`` until every name is unique."""
    seen: set[str] = set()
    out = []
    for n in names:
        while n in seen:
            n = f"{n}_"
        seen.add(n)
        out.append(n)
    return out


def axis_name(rank: int, index: int) -> str:
    """A name for a dynamic axis the model leaves open: batch, seq, or dimN."""
    if index == 0:
        return "batch"
    if index == 1 and rank in (2, 3):
        return "seq"
    return f"dim{index}"


def tf_signature(specs: Sequence[TensorSpec]) -> list[Any]:
    """``tf.TensorSpec`` per input, dynamic axes as ``None``."""
    import tensorflow as tf

    return [
        tf.TensorSpec(
            [None if isinstance(d, str) else d for d in s.dims], tf.as_dtype(s.dtype), name=clean_name(s.name)
        )
        for s in specs
    ]


def flat_output_names(out: Any, declared: Sequence[str] = ()) -> tuple[str, ...]:
    """A name per tensor of ``out`` in ``tf.nest`` order: a dict's sorted keys, else ``declared``
    when it names every tensor, else ``output`` / ``output_0``, ``output_1``..."""
    import tensorflow as tf

    n = len(tf.nest.flatten(out))
    names = [str(k) for k in sorted(out)] if isinstance(out, dict) else list(declared)
    if len(names) != n:
        names = ["output"] if n == 1 else [f"output_{i}" for i in range(n)]
    return tuple(unique_names([clean_name(name, "output") for name in names]))


def user_inputs(cf: Any) -> list[Any]:
    """The placeholders of a concrete function that the caller feeds (captured variables excluded)."""
    import tensorflow as tf

    n = len(tf.nest.flatten(cf.structured_input_signature))
    return list(cf.inputs[:n])


def _freeze(cf: Any) -> Any:
    """The GraphDef of ``cf`` with variables turned into constants.

    TensorFlow's public ``convert_variables_to_constants_v2`` also builds a new concrete function
    from the frozen graph (10 s on ResNet50); we need only the GraphDef, which its first half gives.
    """
    from tensorflow.python.framework import convert_to_constants as c2c

    data_cls = getattr(c2c, "_FunctionConverterDataInEager", None)
    replace = getattr(c2c, "_replace_variables_by_constants", None)
    if data_cls is None or replace is None:  # a TensorFlow without the internals: the slow public way
        frozen = c2c.convert_variables_to_constants_v2(cf, lower_control_flow=False, aggressive_inlining=True)
        return frozen.graph.as_graph_def(add_shapes=True)
    graph_def, _ = replace(data_cls(func=cf, lower_control_flow=False, aggressive_inlining=True))
    return graph_def


def _optimize_in_place(graph: Any) -> Any:
    """tf2onnx's optimizers in tf2onnx's order, looped until none changes the graph.

    Unlike ``tf2onnx.optimizer.optimize_graph`` this neither snapshots the graph before each pass
    nor rewrites every node's protobuf after it; ``make_model`` writes the protobuf once.
    """
    from tf2onnx import optimizer

    passes = optimizer._get_optimizers()
    for iteration in range(_MAX_ITERATIONS):
        changed = False
        for factory in passes.values():
            opt = factory()
            opt.opt_iteration = iteration
            graph = opt._optimize(graph) or graph
            graph.delete_unused_nodes(graph.outputs)
            changed = changed or opt.graph_been_opt
        if not changed:
            break
    graph.topological_sort(graph.get_nodes())
    return graph


def concrete_to_onnx(
    cf: Any,
    input_names: Sequence[str],
    output_names: Sequence[str],
    *,
    opset: int | None = None,
    name: str = "model",
) -> tuple[onnx.ModelProto, tuple[str, ...]]:
    """Convert a concrete function; returns the model and notes.

    ``input_names`` name the function's user inputs in order, ``output_names`` its flat outputs;
    the ONNX graph uses them in place of TensorFlow's tensor names.
    """
    import tensorflow as tf
    from tf2onnx import optimizer, tf_loader, tfonnx
    from tf2onnx.tf_utils import compress_graph_def

    opset = opset or DEFAULT_OPSET
    if opset > MAX_OPSET:
        raise ValueError(f"tf2onnx supports opsets up to {MAX_OPSET}, not {opset}")
    tf_in = [t.name for t in user_inputs(cf)]
    tf_out = [t.name for t in cf.outputs if t.dtype != tf.resource]
    if len(tf_in) != len(input_names) or len(tf_out) != len(output_names):
        raise ValueError(
            f"the function has {len(tf_in)} inputs and {len(tf_out)} outputs; "
            f"expected {len(input_names)} and {len(output_names)}"
        )
    rename = dict(zip(tf_in, input_names)) | dict(zip(tf_out, output_names))
    notes: list[str] = []
    with quiet_tf(), tf.device("/cpu:0"):
        graph_def = tf_loader.fix_freezing_errors_part2(_freeze(cf))
        with tf.Graph().as_default():
            graph_def = tf_loader.tf_optimize(tf_in, tf_out, graph_def)
        const_values = compress_graph_def(graph_def)  # big weights leave the protobuf

        def process():
            with tf.Graph().as_default() as tf_graph:
                tf.import_graph_def(graph_def, name="")
                return tfonnx.process_tf_graph(
                    tf_graph,
                    opset=opset,
                    input_names=tf_in,
                    output_names=tf_out,
                    const_node_values=const_values,
                    tensors_to_rename=rename,
                )

        graph = process()
        try:
            graph = _optimize_in_place(graph)
        except Exception as e:  # noqa: BLE001 - redo the stage as tf2onnx does: skip the failing pass
            notes.append(f"a tf2onnx optimizer failed ({type(e).__name__}); redid optimization the slow, safe way")
            graph = optimizer.optimize_graph(process(), catch_errors=True)
        model = graph.make_model(f"converted from {name} by onnxbridge (tf2onnx handlers)")
    _refuse_unmapped(model)
    return model, tuple(notes)


def _refuse_unmapped(model: onnx.ModelProto) -> None:
    """tf2onnx leaves ops it cannot map in the graph under their TensorFlow names; name them."""
    import onnx

    unmapped = sorted(
        {n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx") and not onnx.defs.has(n.op_type, n.domain)}
    )
    if unmapped:
        raise RuntimeError(f"tf2onnx cannot map TensorFlow op {unmapped[0]} to ONNX (unmapped: {', '.join(unmapped)})")


def rename_tensors(model: onnx.ModelProto, mapping: dict[str, str]) -> None:
    """Rename values everywhere in the main graph (inputs, outputs, node edges, value infos)."""
    if not mapping:
        return
    g = model.graph
    for v in list(g.input) + list(g.output) + list(g.value_info):
        v.name = mapping.get(v.name, v.name)
    for init in g.initializer:
        init.name = mapping.get(init.name, init.name)
    for node in g.node:
        for i, n in enumerate(node.input):
            if n in mapping:
                node.input[i] = mapping[n]
        for i, n in enumerate(node.output):
            if n in mapping:
                node.output[i] = mapping[n]


_TF_OP = (
    re.compile(r"cannot map TensorFlow op ([A-Za-z0-9_]+)"),
    re.compile(r"Tensorflow op \[[^\]]*?: ([A-Za-z0-9_]+)\] is not supported"),
    re.compile(r"[Uu]nsupported ops?:? \[?'?([A-Za-z0-9_]+)"),
    re.compile(r"op_type '?([A-Za-z0-9_]+)'? (?:is )?not supported"),
    re.compile(r"No Op registered for ([A-Za-z0-9_]+)"),
)


def tf2onnx_failing_op(e: BaseException) -> str | None:
    """The TensorFlow op a tf2onnx failure names, when it names one."""
    text = str(e)
    for pat in _TF_OP:
        m = pat.search(text)
        if m:
            return m.group(1)
    return None
