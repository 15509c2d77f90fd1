"""Timing loops, statistics, ONNX Runtime call paths and the optimisation passes (no timing asserts)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnxbridge.errors import UsageError
from onnxbridge.results import OutputParity, ParityCase, ParityReport
from onnxbridge.runtime.timing import (
    TimingPlan,
    ort_callable,
    session_options,
    summarize,
    time_callable,
)


def mlp_model(batch: int | str = "batch") -> onnx.ModelProto:
    """y = relu(x @ W + b) with a dynamic (or fixed) batch."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor("W", TensorProto.FLOAT, [16, 8], rng.standard_normal((16, 8)).astype(np.float32).ravel())
    b = helper.make_tensor("b", TensorProto.FLOAT, [8], rng.standard_normal(8).astype(np.float32))
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["h"]),
            helper.make_node("Add", ["h", "b"], ["z"]),
            helper.make_node("Relu", ["z"], ["y"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 8])],
        initializer=[w, b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_summarize_known_values():
    stats = summarize([0.001 * i for i in range(1, 101)])  # 1..100 ms
    assert stats.runs == 100
    assert stats.p50 == pytest.approx(50.5)
    assert stats.p90 == pytest.approx(90.1)
    assert stats.p99 == pytest.approx(99.01)
    assert stats.mean == pytest.approx(50.5)
    assert stats.stdev == pytest.approx(np.std(np.arange(1, 101), ddof=1))
    assert (stats.min, stats.max) == (pytest.approx(1.0), pytest.approx(100.0))
    assert stats.total_s == pytest.approx(5.05)
    assert set(stats.latency_ms()) == {"p50", "p90", "p99", "mean", "stdev", "min", "max"}


def test_summarize_single_run_and_empty():
    assert summarize([0.002]).stdev == 0.0
    with pytest.raises(ValueError):
        summarize([])


def test_time_callable_counts_warmup_runs_and_syncs():
    calls, syncs = [], []
    stats = time_callable(lambda: calls.append(1), TimingPlan(warmup=3, runs=7), sync=lambda: syncs.append(1))
    assert stats.runs == 7
    assert len(calls) == 10
    assert len(syncs) == 8  # once after warm-up, then once inside every timed run


def test_time_callable_duration_budget_and_min_runs():
    stats = time_callable(lambda: None, TimingPlan(warmup=0, duration_s=0.05))
    assert stats.runs >= 3
    assert stats.total_s <= 0.05 + 0.05
    slow = time_callable(lambda: __import__("time").sleep(0.02), TimingPlan(warmup=0, duration_s=0.001, min_runs=4))
    assert slow.runs == 4


@pytest.mark.parametrize(
    "plan, words",
    [
        (TimingPlan(runs=0), "--runs"),
        (TimingPlan(warmup=-1), "--warmup"),
        (TimingPlan(duration_s=0), "--duration"),
        (TimingPlan(duration_s=float("nan")), "--duration"),
    ],
)
def test_timing_plan_refuses_nonsense(plan, words):
    with pytest.raises(UsageError, match=words):
        plan.check()


def test_session_options_levels_and_threads():
    import onnxruntime as ort

    so = session_options(3, "basic")
    assert so.intra_op_num_threads == 3
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert session_options(None, "disable").graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    with pytest.raises(UsageError, match="optimisation level"):
        session_options(None, "max")
    with pytest.raises(UsageError, match="--threads"):
        session_options(0)


def test_session_options_refuses_a_level_this_onnxruntime_lacks(monkeypatch):
    import onnxruntime as ort

    class Levels:  # an onnxruntime from before ORT_ENABLE_LAYOUT
        ORT_DISABLE_ALL = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        ORT_ENABLE_ALL = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

    monkeypatch.setattr(ort, "GraphOptimizationLevel", Levels)
    with pytest.raises(UsageError, match="'layout' needs a newer onnxruntime"):
        session_options(None, "layout")
    assert session_options(None, "all").graph_optimization_level == Levels.ORT_ENABLE_ALL


@pytest.mark.parametrize("io_binding", [False, True])
def test_ort_callable_runs_the_model(io_binding):
    import onnxruntime as ort

    model = mlp_model()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(1).standard_normal((4, 16)).astype(np.float32)
    call, sync = ort_callable(session, {"x": x, "unused": x}, io_binding=io_binding)
    assert sync is None  # CPU: nothing to synchronise
    out = call()
    w = onnx.numpy_helper.to_array(model.graph.initializer[0])
    b = onnx.numpy_helper.to_array(model.graph.initializer[1])
    expected = np.maximum(x @ w + b, 0)
    if io_binding:
        assert out is None
        assert len(call.keep) == 1  # the bound input copies live as long as the call
        np.testing.assert_allclose(call.binding.copy_outputs_to_cpu()[0], expected, rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_allclose(out[0], expected, rtol=1e-5, atol=1e-5)


def test_reference_callable_calls_torch_directly():
    torch = pytest.importorskip("torch")

    from onnxbridge.converters.torch_runner import TorchRunner
    from onnxbridge.runtime.timing import reference_callable

    lin = torch.nn.Linear(4, 2).eval()
    runner = TorchRunner(lin, "args", ("x",), ("y",))
    x = np.ones((3, 4), np.float32)
    call, sync, name = reference_callable(runner, {"x": x}, "cpu")
    assert sync is None and "pytorch eager (cpu" in name
    np.testing.assert_allclose(call().numpy(), runner.run({"x": x})[0], rtol=1e-6)


def test_time_reference_puts_a_module_timed_elsewhere_back_on_the_cpu():
    torch = pytest.importorskip("torch")

    from onnxbridge.converters.torch_runner import TorchRunner
    from onnxbridge.runtime.timing import time_reference

    class Doubler(torch.nn.Module):  # no parameters: runs on the meta device without a GPU
        def __init__(self):
            super().__init__()
            self.moves = []

        def to(self, device):
            self.moves.append(str(device))
            return super().to(device)

        def forward(self, x):
            return x * 2

    module = Doubler()
    runner = TorchRunner(module, "args", ("x",), ("y",))
    x = np.ones((3, 4), np.float32)
    stats, name = time_reference(runner, {"x": x}, "meta", TimingPlan(warmup=0, runs=2))
    assert stats.runs == 2 and name.startswith("pytorch eager")
    assert module.moves == ["meta", "cpu"]  # the runner's own run feeds host tensors again
    np.testing.assert_allclose(runner.run({"x": x})[0], 2 * x)


def _report(passed: bool) -> ParityReport:
    out = OutputParity("y", (2, 8), "float32", 0.5 if not passed else 0.0, 0.0, 0.0, 1.0, 1e-4, 1e-3, passed)
    return ParityReport(
        "ref",
        "cpu",
        "CPUExecutionProvider",
        ("CPUExecutionProvider",),
        passed,
        (ParityCase("seed=0", 0, {"x": (2, 16)}, (out,), passed),),
        {},
    )


def test_optimize_keeps_the_original_when_parity_breaks():
    from onnxbridge.transforms.optimize import optimize_model

    model = mlp_model()
    kept, result = optimize_model(model, target="cpu", check=lambda m, p: _report(False))
    assert kept is model
    assert not result.applied and result.parity_passed is False
    assert "broke parity" in result.reason and result.max_abs == 0.5
    optimised, ok = optimize_model(model, target="cpu", check=lambda m, p: _report(True))
    assert ok.applied and ok.steps == ("onnxruntime offline (cpu, extended)",)
    x = np.random.default_rng(2).standard_normal((5, 16)).astype(np.float32)
    import onnxruntime as ort

    a = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    b = ort.InferenceSession(optimised.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # the optimiser fused MatMul + Add into one node
    assert ok.nodes_after < ok.nodes_before


def test_optimize_options_and_model_type_detection():
    from onnxbridge.options import OptimizeOptions
    from onnxbridge.transforms.optimize import detect_model_type, transformer_hints

    with pytest.raises(UsageError, match="--optimize"):
        OptimizeOptions("tpu", None)
    with pytest.raises(UsageError, match="--fuse-transformer"):
        OptimizeOptions(None, "llama")
    with pytest.raises(UsageError, match="cuda"):
        OptimizeOptions("cuda").validation_provider("cpu")
    assert OptimizeOptions("cuda").validation_provider("auto") == "cuda"
    assert OptimizeOptions("cpu").validation_provider("auto") == "auto"
    assert detect_model_type(mlp_model()) is None  # no attention: not a transformer
    assert detect_model_type(mlp_model(), {"model_type": "gpt2"}) == "gpt2"

    class Config:
        model_type = "roberta"
        num_attention_heads = 12
        hidden_size = 768

    class Model:
        config = Config()

    assert transformer_hints(Model()) == {"model_type": "bert", "num_heads": 12, "hidden_size": 768}
    assert transformer_hints(object()) == {}


def test_optimize_cuda_without_a_gpu_is_a_provider_error():
    from onnxbridge.errors import ProviderError
    from onnxbridge.runtime.providers import create_session
    from onnxbridge.transforms.optimize import optimize_model

    try:
        create_session(mlp_model().SerializeToString(), "cuda")
    except ProviderError:
        pass
    else:
        pytest.skip("CUDA really runs here")
    with pytest.raises(ProviderError, match="cuda"):
        optimize_model(mlp_model(), target="cuda")


def test_speed_modules_import_no_framework():
    code = (
        "import sys, onnxbridge.runtime.timing, onnxbridge.api._bench, onnxbridge.transforms.optimize, onnxbridge.cli.bench;"
        "bad = [m for m in ('torch', 'tensorflow', 'onnxruntime') if m in sys.modules];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_optimize_retries_without_onnxruntime_transformers_when_its_fusions_break_parity():
    from onnxbridge.transforms.optimize import optimize_model

    verdicts = iter([False, True])
    seen = []

    def check(m, provider):
        seen.append(provider)
        return _report(next(verdicts))

    model, result = optimize_model(mlp_model(), fuse="bert", check=check)
    assert seen == ["cpu", "cpu"]
    assert result.applied and result.fusion == "bert"
    assert result.steps == ("onnxscript.ort_fusions",)
    assert "fusions were dropped" in result.reason and result.notes
