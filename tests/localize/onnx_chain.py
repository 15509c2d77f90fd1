"""An ONNX model of 60 nodes built with onnx.helper (no exporter): 12 residual blocks of
MatMul -> Add -> Relu -> Mul -> Add, x: [batch, 8] -> y: [batch, 8]."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BLOCKS, D = 12, 8


def chain(*, scale: dict[str, float] | None = None, prefix: str = "") -> onnx.ModelProto:
    """``scale``: initializer name -> factor (a planted bug); ``prefix``: renames every node and computed
    value (another tool's names), leaving weights and graph inputs / outputs alone."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []
    x = "x"
    for i in range(BLOCKS):
        w = (rng.standard_normal((D, D)) * 0.4).astype(np.float32)
        b = (rng.standard_normal(D) * 0.1).astype(np.float32)
        s = np.float32(rng.uniform(0.5, 1.5))
        for name, arr in ((f"W{i}", w), (f"b{i}", b), (f"s{i}", s)):
            inits.append(numpy_helper.from_array(np.asarray(arr * (scale or {}).get(name, 1.0), np.float32), name))
        v = [f"{prefix}h{i}_{k}" for k in range(4)]
        out = "y" if i == BLOCKS - 1 else f"{prefix}x{i + 1}"
        nodes += [
            helper.make_node("MatMul", [x, f"W{i}"], [v[0]], name=f"{prefix}mm{i}"),
            helper.make_node("Add", [v[0], f"b{i}"], [v[1]], name=f"{prefix}bias{i}"),
            helper.make_node("Relu", [v[1]], [v[2]], name=f"{prefix}relu{i}"),
            helper.make_node("Mul", [v[2], f"s{i}"], [v[3]], name=f"{prefix}scale{i}"),
            helper.make_node("Add", [v[3], x], [out], name=f"{prefix}res{i}"),
        ]
        x = out
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", D])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", D])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    """float16 weights and compute, float32 inputs and outputs (onnxruntime's converter, keep_io_types),
    nodes re-sorted (the converter appends its input casts at the end)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from onnxbridge.localize.graph import topo_order

    half = convert_float_to_float16(model, keep_io_types=True)
    ordered = topo_order(half)
    del half.graph.node[:]
    half.graph.node.extend(ordered)
    onnx.checker.check_model(half)
    return half
