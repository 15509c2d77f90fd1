"""Node origins: what exporters write, kept through onnxsim, read back (no exporter needed here)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxbridge.localize.metadata import KEY_CALLS, KEY_SCOPES, KEY_STACK, carry_metadata, props, stamp_module_calls
from onnxbridge.localize.origins import ModuleRef, origins
from onnxbridge.transforms.simplify import run_onnxsim

STACK = (
    'File "/src/model.py", line 12, in forward\n    y = self.fc(x)\n'
    'File "/x/site-packages/torch/nn/modules/linear.py", line 134, in forward\n    return F.linear(x)\n'
)


def _node(op, ins, outs, name, scopes=None, calls=None):
    n = helper.make_node(op, ins, outs, name=name)
    for key, value in ((KEY_SCOPES, scopes), (KEY_CALLS, calls), (KEY_STACK, STACK if scopes else None)):
        if value is not None:
            p = n.metadata_props.add()
            p.key, p.value = key, value
    return n


def _model(nodes, inits=()):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        list(inits),
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 10
    return m


def test_onnxsim_drops_node_metadata_and_simplify_carries_it_back():
    w = numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")
    one = numpy_helper.from_array(np.ones((), np.float32), "one")
    model = _model(
        [
            _node("MatMul", ["x", "w"], ["h"], "node_linear", "['', 'fc', 'linear']", "['', 'fc']"),
            _node("Mul", ["one", "one"], ["two"], "node_const", "['', 'mul']"),  # folded away by onnxsim
            _node("Add", ["h", "two"], ["y"], "node_add", "['', 'shared', 'add']", "['', 'shared@1']"),
        ],
        [w, one],
    )
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
    model = _model(
        [
            helper.make_node("Gemm", ["x", "x"], ["a"], name="/inner/shared_1/Gemm"),
            helper.make_node("Relu", ["a"], ["b"], name="/inner/shared_2/Relu"),
            helper.make_node("Relu", ["b"], ["y"], name="/inner/Relu"),
        ]
    )
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
        [
            _node("MatMul", ["x", "fc.weight"], ["mm"], "node_matmul", "['', 'fc', 'matmul']"),
            _node("Add", ["mm", "fc.bias"], ["lin"], "node_add", "['', 'fc', 'add']"),
            _node("Relu", ["lin"], ["y"], "node_relu", "['', 'relu']"),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4])],
        [w, b],
    )
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
    model = _model(
        [
            _node("MatMul", ["x", "w"], ["h"], "node_linear", "['', 'fc', 'linear']", "['', 'fc']"),
            _node("Relu", ["h"], ["r"], "node_relu", "['', 'act', 'relu']", "['', 'act']"),
            _node("Mul", ["one", "one"], ["two"], "node_const", "['', 'mul']"),  # folded away
            _node("Add", ["r", "two"], ["y"], "node_add", "['', 'shared', 'add']", "['', 'shared@1']"),
        ],
        [w, one],
    )
    out, result = simplify_with(model, None, simplifier)
    assert result.applied and [n.op_type for n in out.graph.node] == ["MatMul", "Relu", "Add"]
    table = origins(out)
    assert [table[n.name].module for n in out.graph.node] == [ModuleRef("fc"), ModuleRef("act"), ModuleRef("shared", 1)]


class _Stacked:
    """The part of an ExportedProgram that stamping reads: FX nodes with an ``nn_module_stack``."""

    class _Fx:
        def __init__(self, name, stack):
            self.name, self.meta = name, {"nn_module_stack": stack}

    def __init__(self, **stacks):
        self.graph = type("G", (), {"nodes": [self._Fx(k, v) for k, v in stacks.items()]})()


def test_module_calls_are_written_as_json_and_read_back():
    model = _model(
        [
            _node("Relu", ["x"], ["h"], "node_relu", "['', 'fc', 'relu']"),
            _node("Add", ["h", "h"], ["y"], "node_add", "['', 'shared', 'add']"),
        ]
    )
    root = {"": ("", "Net")}
    program = _Stacked(
        relu={**root, "L__self__fc": ("fc", "Linear")}, add={**root, "L__self__shared@1": ("shared", "Block")}
    )
    assert stamp_module_calls(model, program) == 2
    assert [props(n)[KEY_CALLS] for n in model.graph.node] == ['["", "fc"]', '["", "shared@1"]']
    assert stamp_module_calls(model, program) == 2  # a second stamp replaces, never duplicates
    assert [[p.key for p in n.metadata_props].count(KEY_CALLS) for n in model.graph.node] == [1, 1]
    assert origins(model)["node_add"].module == ModuleRef("shared", 1)


def test_a_file_with_the_older_python_list_encoding_still_reads(tmp_path):
    """Files written before module calls were JSON hold ``repr(list)``: read from the syntax tree, as data."""
    import onnx

    path = tmp_path / "old.onnx"
    onnx.save(_model([_node("Relu", ["x"], ["y"], "node_relu", "['', 'shared', 'relu']", "['', 'shared@1']")]), path)
    table = origins(onnx.load(path))
    assert table["node_relu"].module == ModuleRef("shared", 1) and table["node_relu"].calls_known


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os').system('touch PWNED')",
        "[__import__('os').getcwd()]",
        "['', f'{1}']",
        "['', ['nested']]",
        "['', 1]",
        "('', 'shared@1')",
        "{'a': 1}",
        '["", 2]',
        "[" * 10000,
        "not a list",
    ],
)
def test_metadata_that_is_not_a_list_of_strings_is_never_evaluated(text, tmp_path, monkeypatch):
    from onnxbridge.localize.metadata import str_list

    monkeypatch.chdir(tmp_path)
    assert str_list(text) is None
    assert not (tmp_path / "PWNED").exists()
    model = _model([_node("Relu", ["x"], ["y"], "node_relu", "['', 'shared', 'relu']", text)])
    assert origins(model)["node_relu"].calls_known is False  # falls back to the scopes alone


def test_our_model_metadata_is_json_through_one_helper():
    import json

    from onnxbridge.onnxio import AXIS_RANGES_KEY, read_axis_ranges, read_meta, write_axis_ranges, write_meta
    from onnxbridge.results import ExportedAxis
    from onnxbridge.specs import SizeRange

    model = _model([helper.make_node("Relu", ["x"], ["y"])])
    write_axis_ranges(model, {"seq": SizeRange(1, 24)}, [ExportedAxis("seq", 2, None, "seq >= 2")])
    write_axis_ranges(model, {"seq": SizeRange(1, 24)}, [ExportedAxis("seq", 2, None, "seq >= 2")])
    [entry] = [p for p in model.metadata_props if p.key == AXIS_RANGES_KEY]
    assert (
        json.loads(entry.value)
        == read_meta(model.metadata_props, AXIS_RANGES_KEY)
        == {"seq": {"declared": [1, 24], "exported": [2, None], "guard": "seq >= 2"}}
    )
    assert read_axis_ranges(model) == ({"seq": SizeRange(1, 24)}, (ExportedAxis("seq", 2, None, "seq >= 2"),))
    write_meta(model.metadata_props, AXIS_RANGES_KEY, None)
    assert not len(model.metadata_props) and read_axis_ranges(model) == ({}, ())
    model.metadata_props.add(key=AXIS_RANGES_KEY, value="{'seq': 1}")  # not JSON: nothing, never evaluated
    assert read_meta(model.metadata_props, AXIS_RANGES_KEY) is None and read_axis_ranges(model) == ({}, ())
