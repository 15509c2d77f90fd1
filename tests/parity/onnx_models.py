"""Tiny ONNX models built with onnx.helper, for tests that need no exporter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def _model(nodes, inputs, outputs, inits=()) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), "g", list(inputs), list(outputs), initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 10  # what onnxruntime of this environment reads
    onnx.checker.check_model(model)
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def mlp_weights(seed: int = 0, d_in: int = 16, d_hidden: int = 32, d_out: int = 10):
    rng = np.random.default_rng(seed)
    return (
        (rng.standard_normal((d_in, d_hidden)) * 0.3).astype(np.float32),
        (rng.standard_normal(d_hidden) * 0.1).astype(np.float32),
        (rng.standard_normal((d_hidden, d_out)) * 0.3).astype(np.float32),
        (rng.standard_normal(d_out) * 0.1).astype(np.float32),
    )


def mlp(weights=None, *, fp16: bool = False) -> onnx.ModelProto:
    """logits = relu(x @ W1 + b1) @ W2 + b2, x: [N, 16] float32 -> logits [N, 10] float32.

    ``fp16=True`` keeps float32 inputs and outputs but computes in float16 (weights stored in
    float16, casts at both ends), as onnxconverter-common's keep_io_types does.
    """
    w1, b1, w2, b2 = weights if weights is not None else mlp_weights()
    dt = np.float16 if fp16 else np.float32
    inits = [numpy_helper.from_array(a.astype(dt), n) for a, n in ((w1, "W1"), (b1, "b1"), (w2, "W2"), (b2, "b2"))]
    nodes = []
    x = "x"
    if fp16:
        nodes.append(helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16, name="cast_in"))
        x = "x16"
    nodes += [
        helper.make_node("MatMul", [x, "W1"], ["h0"], name="mm1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="add1"),
        helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
        helper.make_node("MatMul", ["h2", "W2"], ["o0"], name="mm2"),
        helper.make_node("Add", ["o0", "b2"], ["logits16" if fp16 else "logits"], name="add2"),
    ]
    if fp16:
        nodes.append(helper.make_node("Cast", ["logits16"], ["logits"], to=TensorProto.FLOAT, name="cast_out"))
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        inits,
    )


def two_outputs(bias: np.ndarray | None = None) -> onnx.ModelProto:
    """y = x + C (C: [2, 8]), z = x * 2; x: [2, 8] fixed."""
    c = bias if bias is not None else np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8)
    return _model(
        [
            helper.make_node("Add", ["x", "C"], ["y"], name="add"),
            helper.make_node("Mul", ["x", "two"], ["z"], name="mul"),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 8]),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 8]),
        ],
        [numpy_helper.from_array(c.astype(np.float32), "C"), numpy_helper.from_array(np.float32(2.0), "two")],
    )


def flatten_rows(fixed_batch: int | None = None) -> onnx.ModelProto:
    """x: [batch, 4, 2] -> y: [batch, 8]. ``fixed_batch`` bakes the batch into the Reshape's target
    shape, as an exporter that specialised the axis does, while the inputs still declare it dynamic."""
    target = np.array([fixed_batch if fixed_batch else -1, 8], dtype=np.int64)
    return _model(
        [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        [numpy_helper.from_array(target, "shape")],
    )


def embedding(vocab: int = 50, dim: int = 4) -> onnx.ModelProto:
    """input_ids [batch, seq] int64 -> Cast -> Gather(table[vocab, dim]) -> [batch, seq, dim]."""
    table = np.random.default_rng(1).standard_normal((vocab, dim)).astype(np.float32)
    return _model(
        [
            helper.make_node("Cast", ["input_ids"], ["ids32"], to=TensorProto.INT32, name="cast"),
            helper.make_node("Gather", ["table", "ids32"], ["emb"], name="gather"),
        ],
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["batch", "seq", dim])],
        [numpy_helper.from_array(table, "table")],
    )
