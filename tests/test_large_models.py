"""The large-model path through every stage, on a small stand-in: ``--external-data`` takes the
same path a model over 2 GB takes (product saved to a file by the exporter, weights never in a
protobuf, simplified memory-mapped with onnx-ir, validated and benchmarked by path).
bench/bench_large.py runs the real thing (a 2.8 GB decoder) and prints the figures."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnxbridge.errors import InputError, UnsafeInputError

NETS = """
import torch
from torch import nn


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 64), nn.GELU(), nn.Linear(64, 8)).eval()
"""


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from onnxbridge import api

    folder = tmp_path_factory.mktemp("large")
    nets = folder / "nets.py"
    nets.write_text(textwrap.dedent(NETS))
    out = folder / "out" / "m.onnx"
    out.parent.mkdir()
    report = api.convert(f"{nets}:net", out, inputs=["x:batch,16"], external_data=True, provider="cpu")
    return nets, out, report


def _torch(nets: Path, x: np.ndarray) -> np.ndarray:
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location("large_nets", nets)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with torch.no_grad():
        return module.net()(torch.from_numpy(x)).numpy()


def _ort(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_convert_writes_graph_and_weights_as_a_pair_and_reports_memory(converted):
    nets, out, report = converted
    assert report.passed and report.conversion.route == "torch.export/dynamo"
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.onnx", "m.onnx.data"]
    graph = onnx.load(str(out), load_external_data=False)
    weights = [i for i in graph.graph.initializer if len(i.dims) == 2]  # the matrices; tiny biases stay inline
    assert weights and all(i.data_location == TensorProto.EXTERNAL for i in weights)
    assert set(report.peak_rss_bytes) == {"load", "export", "simplify", "validate"}
    assert all(v > 10 * 2**20 for v in report.peak_rss_bytes.values())
    assert report.to_dict()["peak_rss_bytes"] == report.peak_rss_bytes
    # ONNX Runtime on its own, at a batch the validator never used, against the source itself
    x = np.random.default_rng(7).standard_normal((7, 16)).astype(np.float32)
    np.testing.assert_allclose(_ort(out, x), _torch(nets, x), atol=1e-5)


def test_load_onnx_leaves_external_weights_on_disk(converted):
    from onnxbridge.onnxio import load_onnx, session_payload, uses_external_data

    _, out, _ = converted
    model = load_onnx(out)
    assert uses_external_data(model)
    assert not any(i.raw_data for i in model.graph.initializer if i.data_location == TensorProto.EXTERNAL)
    assert session_payload(model, out) == str(out)  # ONNX Runtime reads the weights by path


def test_simplify_validate_inspect_bench_by_path(converted, tmp_path, run_cli):
    nets, out, _ = converted
    simple = tmp_path / "s.onnx"
    r = run_cli("simplify", out, "-o", simple, "--json")
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["simplify"]["reason"] is None and "simplify" in report["peak_rss_bytes"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.onnx", "s.onnx.data"]
    x = np.random.default_rng(3).standard_normal((5, 16)).astype(np.float32)
    np.testing.assert_allclose(_ort(simple, x), _torch(nets, x), atol=1e-5)
    assert run_cli("validate", out, simple).code == 0
    assert run_cli("validate", f"{nets}:net", simple, "--input", "x:batch,16").code == 0
    r = run_cli("inspect", simple, "--json")
    assert json.loads(r.out)["parameters"] == 16 * 64 + 64 + 64 * 8 + 8
    r = run_cli("bench", simple, "--runs", "3", "--warmup", "1", "--json")
    assert r.code == 0 and "bench" in json.loads(r.out)["peak_rss_bytes"]


def test_truncated_or_symlinked_weights_are_refused(converted, tmp_path):
    from onnxbridge.onnxio import load_onnx

    _, out, _ = converted
    (tmp_path / "m.onnx").write_bytes(out.read_bytes())
    (tmp_path / "m.onnx.data").write_bytes((out.parent / "m.onnx.data").read_bytes()[:100])
    with pytest.raises(InputError, match="shorter than offset"):
        load_onnx(tmp_path / "m.onnx")
    (tmp_path / "m.onnx.data").unlink()
    os.symlink(out.parent / "m.onnx.data", tmp_path / "m.onnx.data")
    with pytest.raises(UnsafeInputError, match="symbolic link"):
        load_onnx(tmp_path / "m.onnx")


def _folding_bomb() -> onnx.ModelProto:
    """y = x + ConstantOfShape([1000, 1000]): folding it writes a 4 MB constant into a 40-byte model."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], [1000, 1000])
    nodes = [
        helper.make_node(
            "ConstantOfShape", ["shape"], ["c"], value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])
        ),
        helper.make_node("Add", ["x", "c"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "bomb",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1000])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1000, 1000])],
        [shape],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    return model


def test_folding_that_grows_the_weights_is_refused(tmp_path):
    from onnxbridge.onnxio import save_onnx, weight_bytes
    from onnxbridge.transforms.simplify import simplify_file, simplify_model

    model = _folding_bomb()
    kept, result = simplify_model(model, None)
    # the 4 MB constant is never written: left to be computed at load time (or the result refused)
    assert weight_bytes(kept) <= weight_bytes(model) * 1.05 + 2**20
    assert "computed at load time" in result.reason or "grow the weights" in result.reason, result
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    src = save_onnx(model, tmp_path / "a" / "bomb.onnx", external_data=True)
    path, result = simplify_file(src, tmp_path / "b" / "bomb.onnx", None)
    # the onnx-ir path folds small tensors only, and its result is held to the same rule
    kept_weights = weight_bytes(onnx.load(str(path), load_external_data=False))
    assert kept_weights <= weight_bytes(model) * 1.05 + 2**20, (result, kept_weights)
    assert path == src or result.nodes_after == result.nodes_before


def test_check_update_with_external_data(tmp_path):
    """The gate publishes ONNX + external data + fixtures together, fingerprints the data too."""
    from onnxbridge.gate import check

    (tmp_path / "models.py").write_text(textwrap.dedent(NETS))
    (tmp_path / "onnxbridge.toml").write_text(
        textwrap.dedent("""
        [[models]]
        name = "net"
        source = "models.py:net"
        onnx = "artifacts/net.onnx"
        inputs = ["x:batch,16"]
        provider = "cpu"
        external_data = true
        """)
    )
    report = check(tmp_path / "onnxbridge.toml", update=True)
    assert [r.status for r in report.results] == ["updated"], [r.message for r in report.results]
    art = tmp_path / "artifacts"
    assert sorted(p.name for p in art.iterdir()) == ["net.npz", "net.onnx", "net.onnx.data"]
    assert check(tmp_path / "onnxbridge.toml").results[0].status == "unchanged"
    data = bytearray((art / "net.onnx.data").read_bytes())
    data[:4] = b"\x00\x00\x80\x7f"  # a weight becomes +inf: only the data file changed
    (art / "net.onnx.data").write_bytes(bytes(data))
    result = check(tmp_path / "onnxbridge.toml").results[0]
    assert result.status == "failed" and "ONNX file changed" in result.reasons, result
