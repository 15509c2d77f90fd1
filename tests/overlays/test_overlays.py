"""Overlay files beside the reports: divergence from ``debug``, placement and time from ``bench --profile``."""

from __future__ import annotations

import json

import pytest

from onnxbridge.cli import main
from onnxbridge.overlays import read_index
from onnxbridge.overlays.kinds import FIRST
from onnxbridge.overlays.profile import parse_node_times


def _results(path) -> dict:
    (graph,) = json.loads(path.read_text()).values()
    return graph["results"]


def test_debug_writes_a_divergence_overlay_with_the_planted_node_first(chain_models, tmp_path, capsys):
    report = tmp_path / "where.json"
    assert main(["debug", str(chain_models["good"]), str(chain_models["bad"]), "--report", str(report)]) == 1
    index = read_index(report)
    assert index.model == chain_models["bad"].resolve()
    files = {f.kind: f for f in index.files}
    assert set(files) == {"divergence", "placement"}
    div = _results(files["divergence"].path)
    assert div["mm5"]["bgColor"] == FIRST and div["mm5"]["value"] > 1
    assert [k for k, v in div.items() if v["bgColor"] == FIRST] == ["mm5"]
    before = [f"{op}{i}" for i in range(5) for op in ("mm", "bias", "relu", "scale", "res")]
    assert all(div[n]["value"] < 1 for n in before)  # upstream of the planted weight nothing fails
    assert div["res11"]["value"] > 1  # and the error reaches the output
    assert "mm5" in files["divergence"].summary
    place = _results(files["placement"].path)
    assert len(place) == 60 and {v["value"] for v in place.values()} == {"CPUExecutionProvider"}
    # the file is the viewer's own format: model_explorer's builder reads it back
    nd = pytest.importorskip("model_explorer.node_data_builder")
    gnd = nd.GraphNodeData(results={k: nd.NodeDataResult(**v) for k, v in div.items()})
    assert gnd.results["mm5"].value == div["mm5"]["value"]


def test_a_right_model_marks_no_divergence(chain_models, tmp_path, capsys):
    report = tmp_path / "where.json"
    assert main(["debug", str(chain_models["good"]), str(chain_models["same"]), "--report", str(report)]) == 0
    files = {f.kind: f for f in read_index(report).files}
    if "divergence" in files:
        div = _results(files["divergence"].path)
        assert all(v["bgColor"] != FIRST and v["value"] < 1 for v in div.values())


def test_bench_profile_names_nodes_and_adds_them_up(chain_models, tmp_path, capsys):
    report = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                str(chain_models["good"]),
                "--provider",
                "cpu",
                "--runs",
                "5",
                "--warmup",
                "1",
                "--profile",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    prof = json.loads(report.read_text())["bench"]["profile"]
    assert prof["provider"] == "CPUExecutionProvider" and prof["runs"] > 0
    assert 0 < prof["nodes_ms"] <= prof["total_ms"]  # sequential executor: node spans lie inside the run
    assert len(prof["top"]) == 10 and [t["ms"] for t in prof["top"]] == sorted(
        (t["ms"] for t in prof["top"]), reverse=True
    )
    assert prof["top"][0]["name"] in out and "profiled per run" in out
    files = {f.kind: f for f in read_index(report).files}
    times = _results(files["time"].path)
    graph_nodes = {f"{op}{i}" for i in range(12) for op in ("mm", "bias", "relu", "scale", "res")}
    assert set(times) <= graph_nodes and len(times) >= 24  # fused MatMul+Add nodes land on their MatMul
    assert all(v["value"] >= 0 for v in times.values())


def test_bench_without_profile_has_none(chain_models, tmp_path, capsys):
    report = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                str(chain_models["good"]),
                "--provider",
                "cpu",
                "--runs",
                "3",
                "--warmup",
                "1",
                "--report",
                str(report),
            ]
        )
        == 0
    )
    assert json.loads(report.read_text())["bench"]["profile"] is None
    assert not (tmp_path / "bench.overlays.json").exists()


def _ev(cat, name, ts, dur, **args):
    return {"cat": cat, "name": name, "ts": ts, "dur": dur, "args": args}


def test_parse_node_times_drops_warmup_and_averages():
    events = [
        _ev("Session", "model_run", 0, 100),
        _ev("Node", "a_kernel_time", 10, 80, op_name="MatMul", provider="CPU"),
        _ev("Session", "model_run", 200, 50),
        _ev("Node", "a_kernel_time", 210, 30, op_name="MatMul", provider="CPU"),
        _ev("Node", "b_kernel_time", 241, 10, op_name="Relu", provider="CPU"),
        _ev("Node", "b_fence_before", 241, 1),
        _ev("Session", "model_run", 300, 70),
        _ev("Node", "a_kernel_time", 310, 40, op_name="MatMul", provider="CPU"),
        _ev("Node", "b_kernel_time", 351, 20, op_name="Relu", provider="CPU"),
    ]
    p = parse_node_times(events, warmup=1, provider="CPU")
    assert p.runs == 2 and p.total_ms == pytest.approx(0.060)
    assert [(n.name, n.ms) for n in p.nodes] == [("a", pytest.approx(0.035)), ("b", pytest.approx(0.015))]
    assert p.nodes_ms == pytest.approx(0.050) and p.coverage == pytest.approx(50 / 60)


def test_a_pytorch_source_colours_the_nodes_of_each_module(exports, tmp_path, capsys):
    """debug SOURCE MODEL.onnx: module scores reach the ONNX nodes through the exporter's metadata; the
    planted module's nodes fail, the blocks before it pass."""
    import onnx

    from onnxbridge.localize.origins import origins
    from tests.localize.conftest import scale_module_weight, src

    bad = onnx.load(str(exports["clean"]))  # the localisation tests' export (made once per session)
    scale_module_weight(bad, "blocks.2.fc", 1.02)
    onnx.save(bad, tmp_path / "bad.onnx")
    report = tmp_path / "where.json"
    assert (
        main(["debug", src("clean"), str(tmp_path / "bad.onnx"), "--input", "x:batch,16", "--report", str(report)]) == 1
    )
    files = {f.kind: f for f in read_index(report).files}
    div = _results(files["divergence"].path)
    table = origins(onnx.load(str(tmp_path / "bad.onnx")))
    of = {n: str(o.module) for n, o in table.items()}
    planted = [n for n, m in of.items() if m == "blocks.2.fc"]
    earlier = [n for n, m in of.items() if m.startswith(("blocks.0", "blocks.1"))]
    assert planted and earlier
    assert any(div[n]["bgColor"] == FIRST for n in planted)
    assert all(div[n]["value"] > 1 for n in planted)
    assert all(div[n]["value"] < 1 for n in earlier if n in div) and any(n in div for n in earlier)


def test_placement_marks_cpu_fallbacks_and_places_fused_nodes():
    from onnxbridge.overlays.kinds import (
        FALLBACK,
        TARGET,
        placement_from_report,
        placement_overlay,
    )
    from onnxbridge.results import PlacedNode, Placement

    cuda = "CUDAExecutionProvider"
    o = placement_overlay(
        [("mm0", cuda), ("fused mm1/MatMulAddFusion", cuda), ("topk", "CPUExecutionProvider"), ("Attention_0", cuda)],
        cuda,
        "g",
        {"mm0", "mm1", "topk"},
    )
    by = {v.key: v for v in o.values}
    assert set(by) == {"mm0", "mm1", "topk"}  # a node ORT built from several has no place in the graph
    assert (by["topk"].color, by["topk"].marked) == (FALLBACK, True)
    assert (by["mm1"].color, by["mm1"].marked, by["mm1"].value) == (TARGET, False, cuda)
    assert "1 off" in o.summary
    p = Placement(
        target=cuda,
        nodes=3,
        by_provider={cuda: 2, "CPUExecutionProvider": 1},
        by_op={},
        fallback=(PlacedNode("topk", "TopK", "CPUExecutionProvider"),),
    )
    r = {v.key: v for v in placement_from_report(p, "g", ["mm0", "mm1", "topk"]).values}
    assert r["topk"].marked and not r["mm0"].marked and r["mm0"].value == cuda


def test_an_infinite_score_is_written_as_a_label():
    """fp16 overflow gives error / tolerance inf: JSON cannot hold it, the overlay says 'inf'."""
    from onnxbridge.overlays.kinds import divergence_overlay
    from onnxbridge.overlays.nodedata import node_data_json
    from onnxbridge.results import Divergence, LayerCheck, Localization

    layers = (
        LayerCheck("h0", "MatMul", 0, 0, 0.01, values=("h0",)),
        LayerCheck("h1", "Add", 0, 1, float("inf"), values=("h1",)),
    )
    first = Divergence("b1", "node", "Add", "its own op", ("b1",), float("inf"))
    loc = Localization("onnx", "a", "b", "case", True, first, layers, 2, 2, 1, 2, 0, 0.0, "cmd")
    o = divergence_overlay(loc, "g", {"h0": "m0", "m0": "m0", "h1": "b1", "b1": "b1"})
    (graph,) = json.loads(node_data_json(o)).values()
    assert graph["results"]["b1"] == {"value": "inf", "bgColor": FIRST}
    assert graph["results"]["m0"]["value"] == 0.01
