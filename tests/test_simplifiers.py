"""--simplifier auto: onnxsim, onnxslim and the onnxscript optimizer, the fewest nodes that keep parity
without growing the weights; the report lists every candidate and the op counts the kept one changed."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnxbridge.api._stages import simplify_check
from onnxbridge.converters.base import axis_sizes
from onnxbridge.onnxio import input_specs
from onnxbridge.parity.domain import InputDomain
from onnxbridge.transforms import simplifiers
from onnxbridge.transforms.simplifiers import choose_simplifier, simplify_with
from onnxbridge.transforms.simplify import run_onnxsim
from tests.variants.models import graph


def _check(model):
    specs = input_specs(model)
    return simplify_check(model, InputDomain.of(specs, axis_sizes(specs)), 0)


def _foldable():
    """y = relu(x @ (W * 2)) + (c + c): two constant subgraphs to fold, and an Identity to drop."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Mul", ["w", "two"], ["w2"]),
        helper.make_node("MatMul", ["x", "w2"], ["h"]),
        helper.make_node("Identity", ["h"], ["hi"]),
        helper.make_node("Relu", ["hi"], ["r"]),
        helper.make_node("Add", ["c", "c"], ["cc"]),
        helper.make_node("Add", ["r", "cc"], ["y"]),
    ]
    inits = {
        "w": rng.standard_normal((8, 8)).astype(np.float32),
        "two": np.array(2.0, np.float32),
        "c": rng.standard_normal(8).astype(np.float32),
    }
    return graph(
        nodes,
        inits,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
    )


def test_auto_keeps_the_fewest_nodes_and_reports_every_candidate():
    model = _foldable()
    out, result = choose_simplifier(model, _check(model))
    assert result.applied and result.nodes_before == 6
    tried = {c.tool: c for c in result.candidates}
    assert set(tried) == set(simplifiers.installed()) and all(c.ok for c in tried.values())
    best = min(c.nodes for c in tried.values())
    assert result.nodes_after == best == len(out.graph.node) < 6
    assert tried[result.tool].parity is True and result.parity_passed
    assert result.op_diff == tried[result.tool].op_diff and result.op_diff.get("Identity", 0) == -1


def test_folding_that_grows_the_weights_is_refused():
    """Tile of a 500-float constant to 500 000 floats: onnxslim folds it into a 2 MB weight (onnxsim too, unless
    run as simplify runs it: large constants left unfolded)."""
    nodes = [helper.make_node("Tile", ["c", "reps"], ["t"]), helper.make_node("Add", ["x", "t"], ["y"])]
    model = graph(
        nodes,
        {"c": np.arange(500, dtype=np.float32), "reps": np.array([1000], np.int64)},
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [500_000])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [500_000])],
    )
    out, result = choose_simplifier(model, _check(model))
    grown = [c.tool for c in result.candidates if c.ok and c.weight_bytes > 1_000_000]
    assert grown, "expected onnxslim to fold the Tile"
    assert result.tool not in grown and "Tile" in {n.op_type for n in out.graph.node}
    assert all(f"{t} grew the weights" in result.reason for t in grown)


def test_a_candidate_that_breaks_parity_is_not_kept(monkeypatch):
    """A (fake) tool that drops the Relu wins on node count, fails parity, and the next one is kept."""

    def wrong(model):
        m = run_onnxsim(model)
        relu = next(n for n in m.graph.node if n.op_type == "Relu")
        for n in m.graph.node:
            n.input[:] = [relu.input[0] if i == relu.output[0] else i for i in n.input]
        m.graph.node.remove(relu)
        return m

    monkeypatch.setitem(simplifiers.TOOLS, "onnxslim", ("onnxslim", wrong))
    model = _foldable()
    _, result = choose_simplifier(model, _check(model), ("onnxsim", "onnxslim"))
    bad = next(c for c in result.candidates if c.tool == "onnxslim")
    assert bad.parity is False and result.tool == "onnxsim"
    assert "onnxslim broke parity" in result.reason


def test_onnxsim_stays_the_default_and_a_missing_tool_is_a_usage_error(monkeypatch):
    from onnxbridge.errors import UsageError

    model = _foldable()
    _, result = simplify_with(model, _check(model))
    assert result.tool == "onnxsim" and not result.candidates and result.op_diff
    monkeypatch.setattr(simplifiers, "installed", lambda: ("onnxsim",))
    with pytest.raises(UsageError, match="onnxslim is not installed"):
        simplify_with(model, None, "onnxslim")


def test_simplify_auto_report_matches_the_schema(run_cli, tmp_path):
    from tests.test_report_schema import check

    onnx.save(_foldable(), str(tmp_path / "m.onnx"))
    r = run_cli(
        "simplify",
        tmp_path / "m.onnx",
        "-o",
        tmp_path / "s.onnx",
        "--simplifier",
        "auto",
        "--json",
        "--report",
        tmp_path / "r.md",
    )
    assert r.code == 0, r.err
    d = check("report.schema.json", json.loads(r.out))
    assert d["simplify"]["tool"] in simplifiers.installed() and len(d["simplify"]["candidates"]) >= 1
    assert "| simplifier | ran | nodes |" in (tmp_path / "r.md").read_text()
