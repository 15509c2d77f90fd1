"""PaddlePaddle through paddle2onnx, validated against Paddle Inference (skipped without paddlepaddle and
paddle2onnx: paddle2onnx 2.1 pins onnx<=1.17, so pip cannot install it beside onnxbridge's onnx; see
docs/frameworks.md for the --no-deps install that works)."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import onnxbridge

pytest.importorskip("paddle", reason="paddlepaddle not installed")
pytest.importorskip("paddle2onnx", reason="paddle2onnx not installed")

LAYERS = """
import paddle


def net():
    paddle.seed(0)
    return paddle.nn.Sequential(paddle.nn.Linear(4, 8), paddle.nn.Tanh(), paddle.nn.Linear(8, 3))
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A Paddle inference model, as paddle.jit.save writes it."""
    import paddle

    folder = tmp_path_factory.mktemp("paddle")
    (folder / "layers.py").write_text(textwrap.dedent(LAYERS))
    paddle.seed(0)
    net = paddle.nn.Sequential(paddle.nn.Linear(4, 8), paddle.nn.ReLU(), paddle.nn.Linear(8, 2))
    net.eval()
    paddle.jit.save(net, str(folder / "inference"), input_spec=[paddle.static.InputSpec([None, 4], "float32", "x")])
    return folder


def _paddle_run(folder, x):
    from onnxbridge.converters.paddle import PaddleRunner, _program

    params = folder / "inference.pdiparams"
    return PaddleRunner(_program(params), params).run({"x": x})[0]


@pytest.mark.route("paddle2onnx")
def test_inference_model_converts_with_parity(saved, tmp_path):
    import onnxruntime as ort

    out = tmp_path / "p.onnx"
    report = onnxbridge.convert(saved / "inference.pdiparams", out)
    assert report.framework == "paddle" and report.conversion.route == "paddle2onnx"
    assert report.passed is True, report.validation.summary()
    assert {"batch=1", "batch=5"} <= {c.label for c in report.validation.cases}
    x = np.random.default_rng(2).standard_normal((7, 4)).astype(np.float32)  # a batch the validator did not use
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, _paddle_run(saved, x), rtol=1e-4, atol=1e-5)


def test_a_layer_from_python_with_input_specs(saved, tmp_path):
    import onnxruntime as ort
    import paddle

    from onnxbridge.sources import load_python_object, parse_source

    report = onnxbridge.convert(f"{saved / 'layers.py'}:net", tmp_path / "n.onnx", inputs=["x:batch,4"])
    assert report.framework == "paddle" and report.passed is True, report.validation.summary()
    layer = load_python_object(parse_source(f"{saved / 'layers.py'}:net"))()
    layer.eval()
    x = np.random.default_rng(6).standard_normal((6, 4)).astype(np.float32)
    got = ort.InferenceSession(str(tmp_path / "n.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, layer(paddle.to_tensor(x)).numpy(), rtol=1e-4, atol=1e-5)


def test_missing_parameters_are_bad_input(saved, tmp_path, run_cli):
    (tmp_path / "m.pdmodel").write_bytes(b"")
    res = run_cli("convert", tmp_path / "m.pdmodel", "-o", tmp_path / "o.onnx")
    assert res.code == 2 and "m.pdiparams are missing" in res.err
