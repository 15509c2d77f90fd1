"""fp16 and bf16 conversion on ONNX Runtime's own converter, and an fp32 graph that rounds like fp16.

``convert_fp16`` is ``onnxruntime.transformers.onnx_model.OnnxModel.convert_float_to_float16``: symbolic
shape inference first (fused contrib ops such as Attention get types), then the converter with float
inputs and outputs kept as declared (``keep_io_types``) and a block list added to ONNX Runtime's own
(``DEFAULT_OP_BLOCK_LIST``: TopK, Range, CumSum, Min, Max, ...), then its cascaded-Cast removal. Two
repairs follow (onnxruntime 1.31): the converter writes one ``X_cast_to_fp32`` Cast per use of X by a
blocked node, so ``Mul(h, h)`` gives a graph that is not SSA (duplicates dropped); and it appends its
Casts at the end of the node list (sorted again).

bf16: ONNX Runtime has no bf16 converter, so the fp16 graph is retyped (float16 values, Cast targets,
constants become bfloat16, initializers re-rounded from the fp32 originals with ``ml_dtypes``). Its CPU
provider has bf16 kernels for Cast / Reshape / Transpose / LayerNormalization only (measured): bf16 is
for CUDA, and ``bf16_support`` names the first kernel a provider lacks.
"""

from __future__ import annotations

import copy
import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping

import numpy as np

from ._graph import missing_kernel, quiet_tools, session

__all__ = ["default_block_list", "FP16_MAX", "convert_fp16", "emulate_fp16", "convert_bf16", "bf16_support"]

FP16_MAX = 65504.0


@functools.cache
def default_block_list() -> tuple[str, ...]:
    """The op types ONNX Runtime's converter keeps in fp32 by default (``DEFAULT_OP_BLOCK_LIST``)."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST

    return tuple(DEFAULT_OP_BLOCK_LIST)


def convert_fp16(model, *, op_block_list: Iterable[str] = (), node_block_list: Iterable[str] = ()):
    """ONNX Runtime's fp16 conversion of a copy of ``model``, float inputs and outputs kept as declared;
    ``op_block_list`` is added to the converter's default list, ``node_block_list`` names nodes to keep."""
    from onnxruntime.transformers.onnx_model import OnnxModel

    wrapped = OnnxModel(copy.deepcopy(model))
    with quiet_tools():
        wrapped.convert_float_to_float16(
            use_symbolic_shape_infer=True,
            keep_io_types=True,
            op_block_list=list(default_block_list()) + list(op_block_list),
            node_block_list=list(node_block_list),
        )
        _dedupe_casts(wrapped.model.graph)
        wrapped.topological_sort()
    return wrapped.model


def _dedupe_casts(graph) -> int:
    """Drop repeated identical Casts (same output, input and target): the converter's non-SSA output."""
    seen: set[tuple] = set()
    keep, dropped = [], 0
    for n in graph.node:
        if n.op_type == "Cast" and len(n.output) == 1:
            key = (n.output[0], tuple(n.input), tuple((a.name, a.i) for a in n.attribute))
            if key in seen:
                dropped += 1
                continue
            seen.add(key)
        keep.append(n)
    if dropped:
        del graph.node[:]
        graph.node.extend(keep)
    return dropped


def emulate_fp16(model, kept: Iterable[str], dtypes: Mapping[str, np.dtype]):
    """An fp32 model that rounds to fp16 wherever the converted model would hold fp16 values.

    ONNX Runtime's CPU provider has few fp16 kernels: it wraps the others in Casts and drops the
    fp16->fp32->fp16 pairs between them, so an fp16 model on CPU computes in fp32 and never overflows
    (measured). This graph keeps explicit ``Cast(fp16) -> Cast(fp32)`` pairs (ONNX Runtime keeps lossy
    pairs at every optimisation level), so overflow and rounding show on CPU as they would on a GPU that
    stores fp16 activations. As the converter does: a value is rounded for a consumer unless its producer
    and that consumer are both kept fp32; a float initializer read by a converted node is rounded
    (clipped to +-65504). ``dtypes``: value name -> dtype, from a run of the fp32 model.
    """
    from onnx import TensorProto, helper, numpy_helper

    kept = set(kept)
    m = copy.deepcopy(model)
    g = m.graph
    consumers: dict[str, list] = defaultdict(list)
    for n in g.node:
        for i in n.input:
            consumers[i].append(n)
    for t in g.initializer:
        if t.data_type == TensorProto.FLOAT and any(c.name not in kept for c in consumers[t.name]):
            a = np.clip(numpy_helper.to_array(t), -FP16_MAX, FP16_MAX).astype(np.float16).astype(np.float32)
            t.CopyFrom(numpy_helper.from_array(a, t.name))

    def pair(src: str, dst: str) -> list:
        return [
            helper.make_node("Cast", [src], [src + "__h"], to=TensorProto.FLOAT16, name=src + "__to_h"),
            helper.make_node("Cast", [src + "__h"], [dst], to=TensorProto.FLOAT, name=src + "__to_f"),
        ]

    def reroute(value: str, users: list) -> list:
        for c in users:
            for k, i in enumerate(c.input):
                if i == value:
                    c.input[k] = value + "__r"
        return pair(value, value + "__r") if users else []

    new_nodes = []
    for inp in g.input:  # float inputs are kept as declared: rounded on their way into converted nodes
        if inp.type.tensor_type.elem_type == TensorProto.FLOAT:
            new_nodes += reroute(inp.name, [c for c in consumers[inp.name] if c.name not in kept])
    for n in g.node:
        outs = [o for o in n.output if o and dtypes.get(o) == np.float32]
        if n.name in kept:
            new_nodes.append(n)
            for o in outs:
                new_nodes += reroute(o, [c for c in consumers[o] if c.name not in kept])
            continue
        for k, o in enumerate(list(n.output)):
            if o in outs:
                n.output[k] = o + "__raw"
        new_nodes.append(n)
        for o in outs:
            new_nodes += pair(o + "__raw", o)
    del g.node[:]
    g.node.extend(new_nodes)
    return m


# ----------------------------------------------------------------------------------------------- bf16


def _to_bf16(t, originals: Mapping[str, np.ndarray]) -> None:
    import ml_dtypes
    from onnx import numpy_helper

    src = originals.get(t.name)
    values = src if src is not None else numpy_helper.to_array(t).astype(np.float32)
    t.CopyFrom(numpy_helper.from_array(np.asarray(values, np.float32).astype(ml_dtypes.bfloat16), t.name))


def _retype(graph, originals: Mapping[str, np.ndarray]) -> None:
    from onnx import TensorProto

    f16, bf16 = TensorProto.FLOAT16, TensorProto.BFLOAT16
    for t in graph.initializer:
        if t.data_type == f16:
            _to_bf16(t, originals)
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        if vi.type.tensor_type.elem_type == f16:
            vi.type.tensor_type.elem_type = bf16
    for n in graph.node:
        for a in n.attribute:
            if n.op_type == "Cast" and a.name == "to" and a.i == f16:
                a.i = bf16
            if a.t.data_type == f16:
                _to_bf16(a.t, {})
            for sub in ([a.g] if a.g.node else []) + list(a.graphs):
                _retype(sub, originals)


def convert_bf16(model, *, op_block_list: Iterable[str] = (), node_block_list: Iterable[str] = ()):
    """bf16 model: the fp16 conversion, every float16 type then retyped to bfloat16 (values re-rounded
    from the fp32 originals)."""
    from onnx import TensorProto, numpy_helper

    originals = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == TensorProto.FLOAT}
    m = convert_fp16(model, op_block_list=op_block_list, node_block_list=node_block_list)
    _retype(m.graph, originals)
    return m


def bf16_support(model, provider: str) -> str | None:
    """None when ``provider`` loads the bf16 model; else the kernel it lacks (or ONNX Runtime's message)."""
    from .._util import first_line
    from ..errors import ProviderError

    try:
        session(model, provider)
    except ProviderError:
        raise
    except Exception as e:  # onnxruntime raises its own types (NotImplemented, Fail, InvalidGraph)
        return missing_kernel(e) or first_line(e, with_type=False)
    return None
