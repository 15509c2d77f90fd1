"""TensorRT / CUDA: the provider options are right, and without a GPU every path says why and stops (the
tests skip there); with one, fp16 on CUDA is gated like any variant and TensorRT states its build time."""

from __future__ import annotations

import onnx
import pytest

from onnxbridge.errors import ProviderError
from onnxbridge.runtime.tensorrt import TrtSettings, missing_libraries, profile_shapes, provider_options
from tests.variants import models
from tests.variants.conftest import FAST


def test_tensorrt_provider_options(tmp_path):
    opts = provider_options(
        TrtSettings(
            tmp_path / "cache",
            fp16=True,
            workspace_bytes=1 << 30,
            min_shapes="x:1x64",
            opt_shapes="x:4x64",
            max_shapes="x:16x64",
        )
    )
    assert (tmp_path / "cache").is_dir()
    assert opts["trt_engine_cache_enable"] == "true" and opts["trt_engine_cache_path"] == str(tmp_path / "cache")
    assert opts["trt_fp16_enable"] == "true" and opts["trt_int8_enable"] == "false"
    assert opts["trt_timing_cache_enable"] == "true" and opts["trt_max_workspace_size"] == str(1 << 30)
    assert opts["trt_profile_opt_shapes"] == "x:4x64"
    assert "trt_profile_min_shapes" not in provider_options(TrtSettings(tmp_path, min_shapes="x:1x64"))
    assert profile_shapes({"input_ids": (1, 128), "mask": [1, 128]}) == "input_ids:1x128,mask:1x128"


def test_missing_libraries_are_named():
    missing = missing_libraries("tensorrt")
    assert all(lib.startswith("lib") and ".so" in lib for lib in missing)


@pytest.mark.parametrize("provider, kind", [("cuda", "fp16"), ("tensorrt", "int8")])
def test_gpu_variants_are_gated_or_skip_cleanly(tmp_path, provider, kind):
    from onnxbridge import api

    src = tmp_path / "classifier.onnx"
    onnx.save(models.classifier_onnx(), str(src))
    try:
        report = api.variant(src, kind, provider=provider, min_speedup=0, **FAST)
    except ProviderError as e:
        assert f"--provider {provider}" in e.message and e.hint
        assert {p.name for p in tmp_path.iterdir()} == {"classifier.onnx"}
        pytest.skip(f"{provider} does not start here: {e.message}")
    (v,) = report.variants.variants
    assert report.variants.provider_used.lower().startswith(provider[:4])
    assert v.status.value in ("passed", "refused"), v.reasons
    if provider == "tensorrt":
        assert v.details["engine_build_s"] > 0 and report.variants.timing["fp32_engine_build_s"] > 0
