"""``onnxbridge bench`` and the optimised-export options of convert / simplify: report fields and
error paths on real models (no timing asserts)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from tests.runtime.test_timing import mlp_model

TORCH_MLP = """
import torch


class MLP(torch.nn.Module):
    def __init__(self, seed):
        super().__init__()
        torch.manual_seed(seed)
        self.lin = torch.nn.Linear(16, 8)

    def forward(self, x):
        return torch.relu(self.lin(x))


def net():
    return MLP(0).eval(), (torch.randn(2, 16),)


def other():
    return MLP(1).eval(), (torch.randn(2, 16),)
"""


@pytest.fixture
def mlp_onnx(tmp_path):
    path = tmp_path / "mlp.onnx"
    onnx.save(mlp_model(), str(path))
    return path


@pytest.fixture(scope="module")
def torch_pair(tmp_path_factory):
    """A PyTorch source file and its ONNX export (made once through onnxbridge convert)."""
    pytest.importorskip("torch")
    from onnxbridge import convert

    folder = tmp_path_factory.mktemp("torch_pair")
    src = folder / "mlp.py"
    src.write_text(TORCH_MLP)
    out = folder / "mlp.onnx"
    report = convert(f"{src}:net", out, inputs=["x:batch,16"], validate=False)
    assert out.exists() and report.conversion is not None
    return src, out


def bench_json(run_cli, *args):
    res = run_cli("bench", *args, "--json", "--warmup", "1")
    assert res.code == 0, res.err
    return json.loads(res.out)


def test_bench_report_fields_and_batch_sweep(run_cli, mlp_onnx):
    d = bench_json(run_cli, mlp_onnx, "--provider", "cpu", "--batch", "1,3", "--runs", "5", "--threads", "1")
    assert d["command"] == "bench" and d["output"] == str(mlp_onnx)
    b = d["bench"]
    assert b["provider"] == "CPUExecutionProvider"
    assert b["batch_axis"] == "batch" and b["batch"] == 1
    assert [r["batch"] for r in b["results"]] == [1, 3]
    assert [r["shapes"]["x"] for r in b["results"]] == [[1, 16], [3, 16]]
    for r in b["results"]:
        lat = r["latency_ms"]
        assert r["runs"] == 5 and r["provider_requested"] == "cpu" and r["io_binding"] is False
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert r["throughput_per_s"] == pytest.approx(r["batch"] * 1000.0 / lat["mean"])
        assert r["settings"] == {"intra_op_threads": 1, "graph_optimization_level": "all"}
    assert b["latency_ms"] == b["results"][0]["latency_ms"]
    assert b["reference"] is None and b["speedup_vs_reference"] is None
    assert b["settings"]["runs"] == 5 and b["settings"]["warmup"] == 1
    assert d["timings"]["bench_s"] > 0


def test_bench_duration_io_binding_and_every_provider_asked(run_cli, mlp_onnx):
    d = bench_json(
        run_cli,
        mlp_onnx,
        "--provider",
        "cpu,auto",
        "--duration",
        "0.05",
        "--io-binding",
        "on",
        "--opt-level",
        "disable",
    )
    rows = d["bench"]["results"]
    assert [r["provider_requested"] for r in rows] == ["cpu", "auto"]
    assert all(r["io_binding"] and r["runs"] >= 3 for r in rows)
    assert all(r["settings"]["graph_optimization_level"] == "disable" for r in rows)
    assert d["bench"]["settings"]["duration_s"] == 0.05 and d["bench"]["settings"]["runs"] is None
    if rows[1]["provider_used"] == "CPUExecutionProvider":  # auto fell back: the report says why
        assert any("auto" in n for n in d["notes"])


def test_bench_against_the_source(run_cli, torch_pair, tmp_path):
    src, model = torch_pair
    report = tmp_path / "bench.json"
    md = tmp_path / "bench.md"
    d = bench_json(
        run_cli,
        model,
        "--source",
        f"{src}:net",
        "--input",
        "x:batch,16",
        "--batch",
        "1,4",
        "--runs",
        "5",
        "--provider",
        "cpu",
        "--report",
        report,
        "--report",
        md,
    )
    b = d["bench"]
    assert b["reference"].startswith("pytorch eager (cpu")
    assert [r["batch"] for r in b["reference_results"]] == [1, 4]
    for row, ref in zip(b["results"], b["reference_results"]):
        assert row["speedup_vs_reference"] == pytest.approx(ref["latency_ms"]["p50"] / row["latency_ms"]["p50"])
    assert b["speedup_vs_reference"] == b["results"][0]["speedup_vs_reference"]
    assert b["reference_latency_ms"]["p50"] > 0
    assert all(p["passed"] and p["max_abs"] < 1e-4 for p in b["reference_parity"])
    assert d["framework"] == "pytorch" and not d["notes"]
    assert json.loads(report.read_text())["bench"]["results"][1]["batch"] == 4
    text = md.read_text()
    assert text.startswith("# onnxbridge bench") and "## Bench" in text
    assert "| onnxruntime | CPUExecutionProvider | 4 | no |" in text and "| pytorch |" in text


def test_bench_warns_when_the_model_does_not_match_its_source(run_cli, torch_pair):
    src, model = torch_pair
    d = bench_json(
        run_cli, model, "--source", f"{src}:other", "--input", "x:batch,16", "--runs", "2", "--provider", "cpu"
    )
    assert d["bench"]["reference_parity"][0]["passed"] is False
    assert any("differ from the source" in n for n in d["notes"])


def test_bench_axis_names_the_batch_too(run_cli, mlp_onnx):
    d = bench_json(run_cli, mlp_onnx, "--axis", "batch=3", "--runs", "2", "--provider", "cpu")
    assert d["bench"]["batch"] == 3 and d["bench"]["shapes"] == {"x": [3, 16]}
    res = run_cli("bench", mlp_onnx, "--axis", "batch=3", "--batch", "1,8", "--runs", "2", "--provider", "cpu")
    assert res.code == 2 and "both set the batch size" in res.err


def test_bench_human_summary(run_cli, mlp_onnx):
    res = run_cli("bench", mlp_onnx, "--runs", "3", "--warmup", "0", "--provider", "cpu", "--batch", "2")
    assert res.code == 0, res.err
    assert "ort cpu" in res.out and "p50 ms" in res.out


@pytest.mark.parametrize(
    "args, words",
    [
        (["--batch", "3"], "no dynamic batch axis"),
        (["--runs", "0"], "--runs"),
        (["--threads", "0"], "--threads"),
        (["--axis", "seq=4"], "no dynamic axis 'seq'"),
        (["--input", "y:batch,16"], "no such input"),
    ],
)
def test_bench_usage_errors_on_a_fixed_batch_model(run_cli, tmp_path, args, words):
    path = tmp_path / "fixed.onnx"
    onnx.save(mlp_model(batch=2), str(path))
    res = run_cli("bench", path, *args)
    assert res.code == 2
    assert words in res.err and "hint:" in res.err and "Traceback" not in res.err


@pytest.mark.parametrize(
    "args, words",
    [
        (["--batch", "1,x"], "not an integer"),
        (["--batch", "0"], "positive integer"),
        (["--axis", "batch"], "NAME=SIZE"),
        (["--provider", "tpu"], "tpu"),
        (["--duration", "-1"], "--duration"),
        (["--inputs", "in.npz", "--batch", "2"], "--batch"),
    ],
)
def test_bench_bad_flags(run_cli, mlp_onnx, args, words):
    res = run_cli("bench", mlp_onnx, *args)
    assert res.code == 2
    assert words in res.err


def test_bench_bad_files(run_cli, tmp_path, mlp_onnx):
    assert run_cli("bench", tmp_path / "missing.onnx").code == 2
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model at all")
    res = run_cli("bench", junk)
    assert res.code == 2 and "not a readable ONNX model" in res.err
    res = run_cli("bench", mlp_onnx, "--report", mlp_onnx)
    assert res.code == 2 and "unknown report format" in res.err
    assert mlp_onnx.stat().st_size > 0


def test_bench_real_inputs_file(run_cli, tmp_path, mlp_onnx):
    from onnxbridge.parity.fixtures import save_cases

    npz = tmp_path / "in.npz"
    # an array the model does not take comes first: the batch is read from the model's input
    save_cases(npz, [("real", {"extra": np.ones((2, 3), np.float32), "x": np.ones((5, 16), np.float32)})])
    d = bench_json(run_cli, mlp_onnx, "--inputs", npz, "--runs", "2", "--provider", "cpu")
    assert d["bench"]["results"][0]["shapes"] == {"x": [5, 16]} and d["bench"]["batch"] == 5


def test_bench_explicit_cuda_never_falls_back(run_cli, mlp_onnx):
    from onnxbridge.errors import ProviderError
    from onnxbridge.runtime.providers import create_session

    try:
        create_session(mlp_model().SerializeToString(), "cuda")
    except ProviderError:
        res = run_cli("bench", mlp_onnx, "--provider", "cpu,cuda", "--runs", "2")
        assert res.code == 2 and "CUDAExecutionProvider" in res.err
        return
    d = bench_json(run_cli, mlp_onnx, "--provider", "cuda", "--runs", "5")  # a GPU machine: IO binding on
    assert d["bench"]["provider"] == "CUDAExecutionProvider" and d["bench"]["results"][0]["io_binding"]


@pytest.mark.gpu
def test_bench_source_on_cuda_then_its_parity_check(run_cli, torch_pair):  # pragma: no cover - needs a GPU
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    src, model = torch_pair
    d = bench_json(
        run_cli,
        model,
        "--source",
        f"{src}:net",
        "--input",
        "x:batch,16",
        "--batch",
        "1,4",
        "--runs",
        "3",
        "--provider",
        "cpu",
        "--reference-device",
        "cuda",
    )
    assert d["bench"]["reference"] == "pytorch eager (cuda)"
    assert [p["passed"] for p in d["bench"]["reference_parity"]] == [True, True]


# ------------------------------------------------------------------ optimised exports


TINY_TEXT = (
    "onnxbridge.demo.models:tiny_text_classifier",
    "--input",
    "input_ids:batch,seq:int64",
    "--input",
    "attention_mask:batch,seq:int64",
)


def test_convert_optimize_and_fuse_transformer(run_cli, tmp_path):
    pytest.importorskip("torch")
    import onnxruntime as ort

    out = tmp_path / "tiny.onnx"
    res = run_cli(
        "convert",
        *TINY_TEXT,
        "-o",
        out,
        "--optimize",
        "cpu",
        "--fuse-transformer",
        "auto",
        "--provider",
        "cpu",
        "--json",
    )
    assert res.code == 0, res.err
    d = json.loads(res.out)
    opt = d["optimize"]
    assert opt["applied"] and opt["parity_passed"] and opt["target"] == "cpu" and opt["fusion"] == "bert"
    assert opt["fused_ops"].get("SkipLayerNormalization", 0) >= 1
    assert "onnxruntime offline (cpu, extended)" in opt["steps"]
    assert d["passed"] is True and d["timings"]["optimize_s"] > 0
    saved = onnx.load(str(out))
    assert any(n.domain == "com.microsoft" for n in saved.graph.node)  # the fused model is what was written
    ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"]


def test_simplify_optimize_on_an_onnx_file(run_cli, tmp_path, mlp_onnx):
    out = tmp_path / "opt.onnx"
    res = run_cli("simplify", mlp_onnx, "-o", out, "--optimize", "cpu", "--fuse-transformer", "auto", "--json")
    assert res.code == 0, res.err
    opt = json.loads(res.out)["optimize"]
    assert opt["applied"] and opt["parity_passed"] and opt["fusion"] is None
    assert "no transformer found: fusions skipped" in opt["steps"]
    x = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    import onnxruntime as ort

    a = ort.InferenceSession(str(mlp_onnx), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    b = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_optimize_error_paths(run_cli, tmp_path, mlp_onnx):
    out = tmp_path / "o.onnx"
    res = run_cli("convert", *TINY_TEXT, "-o", out, "--optimize", "cuda", "--provider", "cpu")
    assert res.code == 2 and "--optimize cuda" in res.err
    assert run_cli("simplify", mlp_onnx, "-o", out, "--fuse-transformer", "llama").code == 2
    assert run_cli("simplify", mlp_onnx, "-o", mlp_onnx, "--optimize", "cpu").code == 2  # never over its input
    from onnxbridge.errors import ProviderError
    from onnxbridge.runtime.providers import create_session

    try:
        create_session(mlp_model().SerializeToString(), "cuda")
    except ProviderError:
        res = run_cli("simplify", mlp_onnx, "-o", out, "--optimize", "cuda")
        assert res.code == 2 and "cuda" in res.err
        assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["mlp.onnx"]


def test_bench_html_report_carries_every_measurement(run_cli, mlp_onnx, tmp_path):
    """``bench --report x.html`` wrote a page without the bench section: the measurements were dropped."""
    page, data = tmp_path / "bench.html", tmp_path / "bench.json"
    d = bench_json(
        run_cli, mlp_onnx, "--provider", "cpu", "--batch", "1,3", "--runs", "3", "--report", page, "--report", data
    )
    from onnxbridge.report.numbers import short

    html = page.read_text()
    assert "<h2>Bench</h2>" in html
    rows = [r for r in html.split("<tr") if "<td>onnxruntime</td>" in r]
    assert len(rows) == len(d["bench"]["results"]) == 2
    for row, res in zip(rows, json.loads(data.read_text())["bench"]["results"]):
        assert f"<td>{res['batch']}</td>" in row and f"<td>{short(res['latency_ms']['p50'])}</td>" in row
