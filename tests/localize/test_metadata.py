"""Node origins: what exporters write, kept through onnxsim, read back (no exporter needed here)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxbridge.localize.metadata import KEY_CALLS, KEY_SCOPES, KEY_STACK, carry_metadata, props, stamp_module_calls
from onnxbridge.localize.origins import ModuleRef, origins
from onnxbridge.transforms.simplify import run_onnxsim

STACK = 'File "/src/model.py", line 12, in forward\n    y = self.fc(x)\n' \
        'File "/x/site-packages/torch/nn/modules/linear.py", line 134, in forward\n    return F.linear(x)\n'


def _node(op, ins, outs, name, scopes=None, calls=None):
    n = helper.make_node(op, ins, outs, name=name)
    for key, value in ((KEY_SCOPES, scopes), (KEY_CALLS, calls), (KEY_STACK, STACK if scopes else None)):
        if value is not None:
            p = n.metadata_props.add()
            p.key, p.value = key, value
    return n


def _model(nodes, inits=()):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])], list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 10
    return m


def test_onnxsim_drops_node_metadata_and_simplify_carries_it_back():
    w = numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")
    one = numpy_helper.from_array(np.ones((), np.float32), "one")
    model = _model([
        _node("MatMul", ["x", "w"], ["h"], "node_linear", "['', 'fc', 'linear']", "['', 'fc']"),
        _node("Mul", ["one", "one"], ["two"], "node_const", "['', 'mul']"),  # folded away by onnxsim
        _node("Add", ["h", "two"], ["y"], "node_add", "['', 'shared', 'add']", "['', 'shared@1']"),
    ], [w, one])
    import onnxsim

    bare, _ = onnxsim.simplify(model, check_n=0)
    assert not any(len(n.metadata_props) for n in bare.graph.node)  # the fact carry_metadata exists for
    kept = run_onnxsim(model)
    meta = {n.name: props(n) for n in kept.graph.node}
    assert meta["node_linear"][KEY_CALLS] == "['', 'fc']" and meta["node_add"][KEY_CALLS] == "['', 'shared@1']"
    table = origins(kept)
    assert table["node_add"].module == ModuleRef("shared", 1)
    frame = table["node_linear"].user_frame()
    assert (frame.file, frame.line, frame.code) == ("/src/model.py", 12, "y = self.fc(x)")  # torch's own frame skipped


def test_a_fused_node_gets_the_metadata_of_the_node_it_started_from():
    src = _model([_node("MatMul", ["x", "x"], ["y"], "node_MatMul_3", "['', 'fc', 'm']")])
    dst = _model([helper.make_node("FusedMatMul", ["x", "x"], ["y"], name="node_MatMul_3/MatMulAddFusion")])
    assert carry_metadata(src, dst) == 1
    assert origins(dst)["node_MatMul_3/MatMulAddFusion"].module == ModuleRef("fc")


def test_torchscript_scopes_tell_a_second_call_from_a_module_named_like_one():
    model = _model([helper.make_node("Gemm", ["x", "x"], ["a"], name="/inner/shared_1/Gemm"),
                    helper.make_node("Relu", ["a"], ["b"], name="/inner/shared_2/Relu"),
                    helper.make_node("Relu", ["b"], ["y"], name="/inner/Relu")])
    table = origins(model, ["", "shared", "shared_2"])  # 'shared_2' is a module of its own
    assert table["/inner/shared_1/Gemm"].module == ModuleRef("shared", 1)  # the keyword adapter's prefix stripped
    assert table["/inner/shared_2/Relu"].module == ModuleRef("shared_2", 0)
    assert table["/inner/Relu"].stack == ()


def test_stamping_without_a_readable_program_stamps_nothing():
    model = _model([_node("Relu", ["x"], ["y"], "node_relu", "['', 'act', 'relu']")])
    assert stamp_module_calls(model, None) == 0
    assert origins(model)["node_relu"].calls_known is False


def test_a_linear_that_onnxsim_rewrites_into_reshape_gemm_reshape_keeps_its_module():
    """onnxsim turns a 3-D MatMul + Add into Reshape, Gemm, Reshape under new names: the Gemm is known
    by the weight it reads, the Reshape before it by the node it feeds."""
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "fc.weight")
    b = numpy_helper.from_array(np.ones(4, np.float32), "fc.bias")
    graph = helper.make_graph(
        [_node("MatMul", ["x", "fc.weight"], ["mm"], "node_matmul", "['', 'fc', 'matmul']"),
         _node("Add", ["mm", "fc.bias"], ["lin"], "node_add", "['', 'fc', 'add']"),
         _node("Relu", ["lin"], ["y"], "node_relu", "['', 'relu']")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])], [w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    kept = run_onnxsim(model)
    table = origins(kept)
    gemm = [n for n in kept.graph.node if n.op_type == "Gemm"]
    assert gemm and gemm[0].name not in ("node_matmul", "node_add")  # renamed by onnxsim
    assert table[gemm[0].name].module == ModuleRef("fc")
    feeding = [n for n in kept.graph.node if n.op_type == "Reshape" and n.output[0] in gemm[0].input]
    assert feeding and table[feeding[0].name].module == ModuleRef("fc")


@pytest.mark.parametrize("simplifier", ["onnxslim", "onnxscript", "auto"])
def test_every_simplifier_keeps_node_metadata(simplifier):
    """``--simplifier``: onnxslim drops every node's metadata (as onnxsim does); each tool's result gets it back."""
    from onnxbridge.transforms.simplifiers import installed, simplify_with

    tool = "onnxslim" if simplifier == "auto" else simplifier
    if tool not in installed():
        pytest.skip(f"{tool} not installed")
    w = numpy_helper.from_array(np.eye(4, dtype=np.float32) * 2, "w")
    one = numpy_helper.from_array(np.ones((), np.float32), "one")
    model = _model([
        _node("MatMul", ["x", "w"], ["h"], "node_linear", "['', 'fc', 'linear']", "['', 'fc']"),
        _node("Relu", ["h"], ["r"], "node_relu", "['', 'act', 'relu']", "['', 'act']"),
        _node("Mul", ["one", "one"], ["two"], "node_const", "['', 'mul']"),  # folded away
        _node("Add", ["r", "two"], ["y"], "node_add", "['', 'shared', 'add']", "['', 'shared@1']"),
    ], [w, one])
    out, result = simplify_with(model, None, simplifier)
    assert result.applied and [n.op_type for n in out.graph.node] == ["MatMul", "Relu", "Add"]
    table = origins(out)
    assert [table[n.name].module for n in out.graph.node] == [ModuleRef("fc"), ModuleRef("act"), ModuleRef("shared", 1)]
