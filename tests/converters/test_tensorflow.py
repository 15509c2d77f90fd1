"""The TensorFlow path end to end: SavedModel, TFLite and tf.function sources, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import onnxbridge
from tests.conftest import files_in
from tests.converters.test_keras import input_dims, labels, ort_run, tf_models

MODELS = Path(__file__).resolve().parent / "tf_models.py"


def src(name: str) -> str:
    return f"{MODELS}:{name}"


@pytest.fixture
def saved_model(tmp_path) -> tuple[Path, tf.Module]:
    module = tf_models().scaler()
    path = tmp_path / "scaler_sm"
    tf.saved_model.save(module, str(path))
    return path, module


@pytest.mark.route("tf2onnx")
def test_saved_model_from_a_tf_module(tmp_path, saved_model):
    path, module = saved_model
    out = tmp_path / "scaler.onnx"
    report = onnxbridge.convert(str(path), out)
    assert report.framework == "tensorflow" and report.conversion.route == "tf2onnx"
    assert report.passed is True, report.validation.summary()
    assert input_dims(out) == {"x": ["batch", 6]}  # from the serving signature
    assert report.conversion.output_names == ("output_0",)
    assert {"batch=1", "batch=5"} <= labels(report)
    x = np.random.default_rng(1).standard_normal((9, 6)).astype(np.float32)
    (got,) = ort_run(out, {"x": x})
    ref = module(tf.constant(x)).numpy()
    assert np.abs(ref).std() > 0
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.route("tf2onnx/tflite")
def test_tflite_from_the_converter_with_dynamic_batch(tmp_path):
    module = tf_models().scaler()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
    path = tmp_path / "scaler.tflite"
    path.write_bytes(converter.convert())
    out = tmp_path / "scaler_tflite.onnx"
    report = onnxbridge.convert(str(path), out)
    assert report.conversion.route == "tf2onnx/tflite"
    assert report.passed is True, report.validation.summary()
    assert report.validation.reference == "tflite"
    ((name, dims),) = input_dims(out).items()
    assert dims == ["batch", 6]
    assert {"batch=1", "batch=5"} <= labels(report)
    x = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)
    (got,) = ort_run(out, {name: x})
    np.testing.assert_allclose(got, module(tf.constant(x)).numpy(), atol=1e-5, rtol=1e-5)


@pytest.mark.route("tf2onnx")
def test_tf_module_python_source(tmp_path):
    out = tmp_path / "mod.onnx"
    report = onnxbridge.convert(src("scaler"), out, simplify=False)
    assert report.framework == "tensorflow"
    assert report.passed is True, report.validation.summary()
    assert input_dims(out) == {"x": ["batch", 6]}


@pytest.mark.route("tf2onnx")
def test_tf_function_without_signature_needs_input(tmp_path, run_cli):
    res = run_cli("convert", src("no_signature"), "-o", tmp_path / "f.onnx")
    assert res.code == 2 and "--input" in res.err and "Traceback" not in res.err
    out = tmp_path / "fn.onnx"
    res = run_cli("convert", src("no_signature"), "-o", out, "--input", "x:batch,seq", "--json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["framework"] == "tensorflow" and data["validation"]["passed"] is True
    x = np.random.default_rng(3).standard_normal((3, 7)).astype(np.float32)
    (got,) = ort_run(out, {"x": x})
    np.testing.assert_allclose(got, np.tanh(x) * 2.0, atol=1e-6)


# ------------------------------------------------------------------------------ bad input
def test_saved_model_without_serving_signature(tmp_path, run_cli):
    module = tf.Module()
    module.f = tf.function(lambda x: x + 1.0)
    module.f(tf.constant([1.0]))  # traced, but no input_signature: no signature is exported
    path = tmp_path / "nosig"
    tf.saved_model.save(module, str(path))
    res = run_cli("convert", path, "-o", tmp_path / "out.onnx")
    assert res.code == 2, res.err
    assert "no serving signature 'serving_default'" in res.err and "hint" in res.err.lower()
    assert "Traceback" not in res.err
    assert not (tmp_path / "out.onnx").exists()


def test_tflite_that_is_not_a_flatbuffer(tmp_path, run_cli):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x00" * 64)
    res = run_cli("convert", path, "-o", tmp_path / "out.onnx")
    assert res.code == 2, res.err
    assert "not a TFLite flatbuffer" in res.err and "TFLiteConverter" in res.err
    assert files_in(tmp_path) == {"model.tflite"}


def test_corrupt_saved_model(tmp_path, run_cli):
    folder = tmp_path / "broken_sm"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"garbage")
    res = run_cli("convert", folder, "-o", tmp_path / "out.onnx")
    assert res.code == 2, res.err
    assert "not a readable SavedModel" in res.err and "Traceback" not in res.err
    assert not (tmp_path / "out.onnx").exists()


def test_unmapped_op_is_exit_3_naming_the_op(tmp_path, run_cli):
    res = run_cli("convert", src("bessel"), "-o", tmp_path / "b.onnx", "--input", "x:batch,4")
    assert res.code == 3, res.err
    assert "BesselI0e" in res.err and "tf2onnx" in res.err and "Traceback" not in res.err
    assert files_in(tmp_path) == set()
