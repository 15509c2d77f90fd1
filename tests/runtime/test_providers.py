"""Provider truth: an explicit provider that cannot start is an error naming the missing piece."""

from __future__ import annotations

import pytest

from onnxbridge.errors import ProviderError
from onnxbridge.runtime.providers import create_session, diagnose_cuda
from onnxbridge.runtime.sessions import OrtRunner
from tests.parity import onnx_models


def _cuda_starts() -> bool:
    try:
        create_session(onnx_models.mlp().SerializeToString(), "cuda")
        return True
    except ProviderError:
        return False


CUDA = _cuda_starts()


@pytest.mark.skipif(CUDA, reason="CUDA starts on this machine")
@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_explicit_gpu_provider_on_cpu_machine_exits_2_naming_the_cause(run_cli, onnx_file, provider):
    a = onnx_file("a.onnx", onnx_models.mlp())
    r = run_cli("validate", a, a, "--provider", provider)
    assert r.code == 2, r.err
    assert "Traceback" not in r.err
    line = r.err.splitlines()[0]
    assert line.startswith("error: --provider " + provider)
    # names what is missing: the driver library on a machine without one, else the CUDA library
    cause = diagnose_cuda()
    assert cause in line
    assert any(k in cause for k in ("libcuda.so.1", "driver", "libcudart", "libcublas", "libcudnn"))
    assert "hint:" in r.err


@pytest.mark.skipif(CUDA, reason="CUDA starts on this machine")
def test_auto_falls_back_to_cpu_and_says_why(onnx_file):
    from onnxbridge import api

    a = onnx_file("a.onnx", onnx_models.mlp())
    report = api.validate(str(a), a)
    v = report.validation
    assert v.passed
    assert v.provider_requested == "auto"
    assert v.provider_used == "CPUExecutionProvider"
    assert any("CUDA did not start" in n and diagnose_cuda() in n for n in v.notes)


def test_cpu_placement_is_read_from_the_session(onnx_file):
    a = onnx_file("a.onnx", onnx_models.mlp())
    runner = OrtRunner(a, "cpu", profile=True)
    assert runner.placement is None  # nothing ran yet
    import numpy as np

    runner.run({"x": np.ones((3, 16), np.float32)})
    p = runner.placement
    assert p is not None and p.ok
    assert p.target == "CPUExecutionProvider"
    assert p.by_provider == {"CPUExecutionProvider": p.nodes}
    # counted after ONNX Runtime's graph optimisations: MatMul+Add(+Relu) become (Fused)Gemm
    assert 1 <= p.nodes <= 5
    assert sum(sum(c.values()) for c in p.by_op.values()) == p.nodes
    assert set(p.by_op) <= {"MatMul", "Add", "Relu", "Gemm", "FusedGemm", "FusedMatMul"}


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="CUDA cannot start on this machine")
def test_cuda_placement_lists_nodes_on_cuda(onnx_file):  # pragma: no cover - needs a GPU
    import numpy as np

    a = onnx_file("a.onnx", onnx_models.mlp())
    runner = OrtRunner(a, "cuda", profile=True)
    runner.run({"x": np.ones((3, 16), np.float32)})
    p = runner.placement
    assert runner.provider.used == "CUDAExecutionProvider"
    assert p.target == "CUDAExecutionProvider"
    assert p.by_provider.get("CUDAExecutionProvider", 0) >= 1


def test_session_error_without_a_message_is_an_input_error(monkeypatch):
    """An onnxruntime exception with an empty message still becomes an InputError, not an IndexError."""
    from onnxbridge.errors import InputError
    from onnxbridge.runtime import sessions as runners

    def refuse(*_args, **_kwargs):
        raise RuntimeError("")

    monkeypatch.setattr(runners, "create_session", refuse)
    with pytest.raises(InputError, match="ONNX Runtime cannot load the model: RuntimeError"):
        OrtRunner(onnx_models.mlp(), "cpu")


def test_a_provider_is_one_typed_value_in_both_spellings():
    """``--provider`` names, ONNX Runtime names, GPU-ness and the report label come from one table."""
    from onnxbridge.options import PROVIDERS
    from onnxbridge.options.providers import CPU, CUDA, KNOWN_PROVIDERS, TENSORRT, Provider, is_gpu, provider_label
    from onnxbridge.runtime.providers import short_provider

    assert PROVIDERS == ("auto", "cpu", "cuda", "tensorrt")
    assert [p.ort for p in KNOWN_PROVIDERS] == [
        "CPUExecutionProvider",
        "CUDAExecutionProvider",
        "TensorrtExecutionProvider",
    ]
    for p in KNOWN_PROVIDERS:
        assert Provider.named(p.name) is p and Provider.named(p.ort) is p and Provider.from_ort(p.ort) is p
        assert short_provider(p.ort) == p.name
        assert is_gpu(p.name) == is_gpu(p.ort) == p.is_gpu
    assert [p.is_gpu for p in KNOWN_PROVIDERS] == [False, True, True]
    assert (CPU.device, CUDA.device, TENSORRT.device) == ("cpu", "cuda", "cuda")
    assert [provider_label(p.ort) for p in KNOWN_PROVIDERS] == ["CPU", "CUDA", "Tensorrt"]
    assert Provider.named("CUDA") is CUDA
    # auto is a request, not a provider; a provider we never ask for keeps its name and is no GPU of ours
    assert Provider.named("auto") is None and not is_gpu("auto") and not is_gpu(None) and not is_gpu("")
    other = Provider.from_ort("DmlExecutionProvider")
    assert (other.name, other.label, other.is_gpu) == ("DmlExecutionProvider", "Dml", False)
    assert short_provider("DmlExecutionProvider") == "DmlExecutionProvider"


def test_the_choice_names_the_provider_that_ran():
    from onnxbridge.options.providers import CPU

    _, choice = create_session(onnx_models.mlp().SerializeToString(), "cpu")
    assert choice.used == "CPUExecutionProvider" and choice.provider is CPU and not choice.provider.is_gpu
