"""Models whose classes mean something, with engineered weights (no training), for the variant gates.

``classifier``: 10 classes, each a random unit prototype in R^64; inputs are a prototype times 3 plus
noise (``cluster_inputs``). The network computes ``logits ~= x @ P.T`` through a ReLU layer
(``relu(a) - relu(-a) = a``) with 108 extra hidden units of small random weights, so its argmax is the
cluster a point came from, with wide margins: a variant that flips it is really wrong. The same weights
serve an ONNX graph (``classifier_onnx``) and a PyTorch module (``classifier``, a SOURCE).
"""

from __future__ import annotations

import numpy as np

K, D, H = 10, 64, 128


def classifier_weights(seed: int = 0):
    rng = np.random.default_rng(seed)
    protos = rng.standard_normal((K, D))
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    extra = H - 2 * K
    w1 = np.concatenate([protos.T, -protos.T, 0.1 * rng.standard_normal((D, extra))], axis=1)
    b1 = np.concatenate([np.zeros(2 * K), 0.1 * rng.standard_normal(extra)])
    w2 = np.concatenate([np.eye(K), -np.eye(K), 0.01 * rng.standard_normal((extra, K))], axis=0)
    b2 = 0.01 * rng.standard_normal(K)
    return protos.astype(np.float32), [a.astype(np.float32) for a in (w1, b1, w2, b2)]


def cluster_inputs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points and their labels: 3 * a prototype + N(0, 0.3^2) noise."""
    protos, _ = classifier_weights()
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, K, n)
    x = 3.0 * protos[labels] + 0.3 * rng.standard_normal((n, D)).astype(np.float32)
    return x.astype(np.float32), labels


def classifier_onnx():
    """The classifier as ONNX: x [batch, 64] -> logits [batch, 10]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    _, (w1, b1, w2, b2) = classifier_weights()
    inits = [numpy_helper.from_array(a, n) for a, n in ((w1, "W1"), (b1, "b1"), (w2, "W2"), (b2, "b2"))]
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h0"], name="mm1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="add1"),
        helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
        helper.make_node("MatMul", ["h2", "W2"], ["o0"], name="mm2"),
        helper.make_node("Add", ["o0", "b2"], ["logits"], name="add2"),
    ]
    graph = helper.make_graph(
        nodes,
        "classifier",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", D])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", K])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def classifier():
    """The same classifier as a PyTorch module, with an example batch (a SOURCE: tests.variants.models:classifier)."""
    import torch

    _, (w1, b1, w2, b2) = classifier_weights()
    l1, l2 = torch.nn.Linear(D, H), torch.nn.Linear(H, K)
    with torch.no_grad():
        l1.weight.copy_(torch.from_numpy(w1.T.copy()))
        l1.bias.copy_(torch.from_numpy(b1))
        l2.weight.copy_(torch.from_numpy(w2.T.copy()))
        l2.bias.copy_(torch.from_numpy(b2))
    net = torch.nn.Sequential(l1, torch.nn.ReLU(), l2).eval()
    return net, (torch.from_numpy(cluster_inputs(2, 99)[0]),)


def graph(nodes, inits: dict, inputs, outputs, opset: int = 17):
    """A checked ONNX model from nodes and numpy initializers."""
    import onnx
    from onnx import helper, numpy_helper

    g = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in inits.items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def rms_overflow():
    """MatMul with large weights, then a hand-written RMSNorm: ``h * h`` overflows fp16 (|x| ~ 1e5..1e6)."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
        helper.make_node("Mul", ["h", "h"], ["sq"], name="square"),
        helper.make_node("ReduceMean", ["sq"], ["ms"], name="mean", axes=[-1], keepdims=1),
        helper.make_node("Add", ["ms", "eps"], ["mse"], name="eps_add"),
        helper.make_node("Sqrt", ["mse"], ["rms"], name="sqrt"),
        helper.make_node("Div", ["h", "rms"], ["n"], name="div"),
        helper.make_node("MatMul", ["n", "w2"], ["y"], name="mm2"),
    ]
    inits = {
        "w": (rng.standard_normal((32, 32)) * 60).astype(np.float32),
        "w2": (rng.standard_normal((32, 8)) / 6).astype(np.float32),
        "eps": np.array([1e-6], np.float32),
    }
    return graph(
        nodes,
        inits,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
    )


def cancellation():
    """``(h + 4096) - 4096``: fp16's spacing at 4096 is 4, so the sum loses h."""
    from onnx import TensorProto, helper

    w = (np.random.default_rng(2).standard_normal((16, 16)) / 4).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
        helper.make_node("Add", ["h", "big"], ["hb"], name="add_big"),
        helper.make_node("Sub", ["hb", "big"], ["hs"], name="sub_big"),
        helper.make_node("MatMul", ["hs", "w"], ["y"], name="mm2"),
    ]
    return graph(
        nodes,
        {"w": w, "big": np.array([4096.0], np.float32)},
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 16])],
    )
