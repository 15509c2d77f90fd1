"""The Keras path end to end: convert real architectures, then check the numbers independently."""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import onnxbridge
from tests.conftest import files_in

MODELS = Path(__file__).resolve().parent / "tf_models.py"


def src(name: str) -> str:
    return f"{MODELS}:{name}"


def tf_models():
    import importlib.util

    spec = importlib.util.spec_from_file_location("tests_tf_models", MODELS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def input_dims(path: Path) -> dict[str, list]:
    model = onnx.load(str(path))
    return {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}


def ort_run(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def labels(report) -> set[str]:
    return {c.label for c in report.validation.cases}


def assert_close_relative(got: np.ndarray, ref: np.ndarray, rel: float = 1e-4) -> None:
    """Error small against the output's own scale, and that scale not zero (a test that can fail)."""
    scale = float(np.abs(ref).max())
    assert scale > 0 and np.abs(ref).std() > 0, "reference output is constant: the check would be vacuous"
    assert float(np.abs(got - ref).max()) <= rel * scale, (float(np.abs(got - ref).max()), scale)


@pytest.mark.route("tf2onnx")
@pytest.mark.parametrize("name", ["mobilenet_v2", "resnet50"])
def test_keras_applications_with_dynamic_batch(tmp_path, name):
    out = tmp_path / f"{name}.onnx"
    # weights=None models have tiny logits (MobileNetV2: ~1e-11): judge them relative to their scale
    report = onnxbridge.convert(src(name), out, atol=0.0, rtol=1e-3)
    assert report.passed is True, report.validation.summary()
    assert report.conversion.route == "tf2onnx"
    ((input_name, dims),) = input_dims(out).items()  # Keras numbers its InputLayer names per process
    assert input_name.startswith("input_layer") and dims == ["batch", 32, 32, 3]
    assert {"batch=1", "batch=5"} <= labels(report)
    x = np.random.default_rng(7).standard_normal((3, 32, 32, 3)).astype(np.float32)
    (got,) = ort_run(out, {input_name: x})
    ref = getattr(tf_models(), name)()(x, training=False).numpy()
    assert got.shape == (3, 10)
    assert_close_relative(got, ref)


@pytest.mark.route("tf2onnx")
def test_bidirectional_lstm_gru_text_model_with_dynamic_length(tmp_path):
    out = tmp_path / "rnn.onnx"
    report = onnxbridge.convert(src("text_rnn"), out)
    assert report.passed is True, report.validation.summary()
    assert input_dims(out) == {"tokens": ["batch", "seq"]}
    assert {"seq=1", "seq=11", "batch=1", "batch=5", "all axes larger"} <= labels(report)
    assert report.validation.cases[0].shapes == {"tokens": (2, 8)}
    tokens = np.random.default_rng(3).integers(0, 100, (3, 17)).astype(np.int32)
    (got,) = ort_run(out, {"tokens": tokens})
    ref = tf_models().text_rnn()(tokens, training=False).numpy()
    assert_close_relative(got, ref)


@pytest.mark.route("tf2onnx")
def test_functional_unet(tmp_path):
    out = tmp_path / "unet.onnx"
    report = onnxbridge.convert(src("unet"), out)
    assert report.passed is True, report.validation.summary()
    assert report.conversion.output_names == ("mask_logits",)
    x = np.random.default_rng(4).standard_normal((3, 32, 32, 3)).astype(np.float32)
    (got,) = ort_run(out, {"image": x})
    ref = tf_models().unet()(x, training=False).numpy()
    assert got.shape == (3, 32, 32, 2)
    assert_close_relative(got, ref)


@pytest.mark.route("keras-torch/dynamo")
def test_transformer_block_falls_back_to_keras_on_torch(tmp_path):
    """gelu lowers to TensorFlow's Erfc, which tf2onnx cannot map: the torch-backend route wins."""
    out = tmp_path / "block.onnx"
    report = onnxbridge.convert(src("transformer_block"), out)
    attempts = report.conversion.attempts
    assert [a.route for a in attempts] == ["tf2onnx", "keras-torch/dynamo"]
    assert attempts[0].exported is False and attempts[0].failing_op == "Erfc"
    assert attempts[1].ok and attempts[1].valid_onnx and attempts[1].parity
    assert report.conversion.route == "keras-torch/dynamo"
    assert report.passed is True, report.validation.summary()
    assert report.conversion.output_names == ("hidden", "pooled")  # dict outputs, sorted keys
    assert input_dims(out) == {"tokens": ["batch", "seq"]}
    assert {"seq=1", "seq=11", "batch=5"} <= labels(report)
    tokens = np.random.default_rng(5).integers(0, 64, (3, 13)).astype(np.int32)
    hidden, pooled = ort_run(out, {"tokens": tokens})
    ref = tf_models().transformer_block()(tokens, training=False)
    assert_close_relative(hidden, ref["hidden"].numpy())
    assert_close_relative(pooled, ref["pooled"].numpy())


@pytest.mark.route("tf2onnx")
def test_subclassed_model_needs_input_and_is_built_for_the_user(tmp_path, run_cli):
    res = run_cli("convert", src("subclassed"), "-o", tmp_path / "s.onnx")
    assert res.code == 2 and "--input" in res.err and "Traceback" not in res.err
    assert files_in(tmp_path) == set()
    out = tmp_path / "sub.onnx"
    report = onnxbridge.convert(src("subclassed"), out, inputs=["x:batch,5"])
    assert report.passed is True, report.validation.summary()
    assert any("built it by calling it" in n for n in report.conversion.notes)
    assert input_dims(out) == {"x": ["batch", 5]}
    model = tf_models().subclassed()
    x = np.random.default_rng(6).standard_normal((4, 5)).astype(np.float32)
    ref = model(x).numpy()
    assert report.validation.cases[-1].shapes == {"x": (11, 5)}  # the sweep: batch 1, 5, 11
    (got,) = ort_run(out, {"x": x})  # the factory seeds Keras: a fresh model has the same weights
    assert_close_relative(got, ref)


@pytest.mark.route("keras-torch/dynamo")
def test_keras_file_through_the_torch_backend_route(tmp_path):
    """A .keras file re-loaded by the child process, safe mode on."""
    model = tf_models().dense_small()
    path = tmp_path / "dense.keras"
    model.save(path)
    out = tmp_path / "dense.onnx"
    report = onnxbridge.convert(str(path), out, routes=["keras-torch/dynamo"])
    assert report.conversion.route == "keras-torch/dynamo"
    assert report.passed is True, report.validation.summary()
    x = np.random.default_rng(8).standard_normal((7, 6)).astype(np.float32)
    (got,) = ort_run(out, {"features": x})
    assert_close_relative(got, model(x).numpy())


@pytest.mark.route("keras-torch/dynamo")
def test_module_source_imported_from_the_project_root_reaches_the_child(tmp_path, monkeypatch):
    """``package.module:NAME`` imported from a folder on sys.path that is not the working directory (as
    ``onnxbridge check`` imports a project's modules from its root): the child process imports it too."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "kerasmods").mkdir(parents=True)
    elsewhere.mkdir()
    (project / "kerasmods" / "__init__.py").write_text("")
    (project / "kerasmods" / "dense.py").write_text(
        "import keras\n\n\ndef build():\n    keras.utils.set_random_seed(3)\n"
        "    x = keras.Input((6,), name='features')\n    return keras.Model(x, keras.layers.Dense(3, name='y')(x))\n"
    )
    monkeypatch.syspath_prepend(str(project))
    monkeypatch.chdir(elsewhere)
    try:
        report = onnxbridge.convert("kerasmods.dense:build", tmp_path / "d.onnx", routes=["keras-torch/dynamo"])
        assert report.conversion.route == "keras-torch/dynamo", report.conversion.attempts
        assert report.passed is True, report.validation.summary()
        x = np.random.default_rng(8).standard_normal((4, 6)).astype(np.float32)
        (got,) = ort_run(tmp_path / "d.onnx", {"features": x})
        assert_close_relative(got, sys.modules["kerasmods.dense"].build()(x).numpy())
    finally:
        for name in [n for n in sys.modules if n == "kerasmods" or n.startswith("kerasmods.")]:
            del sys.modules[name]


def test_example_inputs_from_factory_fix_the_shapes(tmp_path):
    report = onnxbridge.convert(src("with_example"), tmp_path / "ex.onnx", simplify=False)
    assert report.passed is True
    assert input_dims(tmp_path / "ex.onnx") == {"input": [3, 5]}


# ------------------------------------------------------------------------------ bad input
def test_corrupt_keras_zip_is_refused(tmp_path, run_cli):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    res = run_cli("convert", bad, "-o", tmp_path / "out.onnx")
    assert res.code == 2, res.err
    assert "not a .keras archive" in res.err and "hint" in res.err.lower()
    assert "Traceback" not in res.err
    assert files_in(tmp_path) == {"broken.keras"}


def test_truncated_keras_archive_is_refused(tmp_path, run_cli):
    path = tmp_path / "dense.keras"
    tf_models().dense_small().save(path)
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    trimmed = tmp_path / "trimmed.keras"
    with zipfile.ZipFile(path) as src_zip, zipfile.ZipFile(trimmed, "w") as dst:
        for n in names:
            if n != "model.weights.h5":
                dst.writestr(n, src_zip.read(n))
    res = run_cli("convert", trimmed, "-o", tmp_path / "out.onnx")
    assert res.code == 2, res.err
    assert "not a readable Keras model" in res.err and "Traceback" not in res.err
    assert not (tmp_path / "out.onnx").exists()


def test_h5_without_tf_keras_names_the_package(tmp_path, run_cli, monkeypatch):
    path = tmp_path / "legacy.h5"
    import h5py

    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.15.0"
    monkeypatch.setitem(sys.modules, "tf_keras", None)  # as if not installed
    res = run_cli("convert", path, "-o", tmp_path / "out.onnx")
    assert res.code == 2, res.err
    assert "pip install tf_keras" in res.err and "Traceback" not in res.err
    assert files_in(tmp_path) == {"legacy.h5"}


def test_h5_that_is_not_hdf5_is_refused(tmp_path, run_cli):
    path = tmp_path / "fake.h5"
    path.write_text("not hdf5")
    res = run_cli("convert", path, "-o", tmp_path / "out.onnx")
    assert res.code == 2 and "not an HDF5 file" in res.err


@pytest.mark.route("tf2onnx")
def test_lambda_layer_is_refused_unless_trusted(tmp_path, run_cli):
    import keras

    inp = keras.Input((4,), name="x")
    model = keras.Model(inp, keras.layers.Lambda(lambda t: t * 2.0 + 1.0)(inp))
    path = tmp_path / "lambda.keras"
    model.save(path)
    out = tmp_path / "lambda.onnx"
    res = run_cli("convert", path, "-o", out)
    assert res.code == 2, res.err
    assert "Lambda layer" in res.err and "--trust-model" in res.err and "Traceback" not in res.err
    assert not out.exists()
    res = run_cli("convert", path, "-o", out, "--trust-model", "--json", "--no-simplify")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["route"] == "tf2onnx" and data["validation"]["passed"] is True
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    (got,) = ort_run(out, {"x": x})
    np.testing.assert_allclose(got, x * 2.0 + 1.0)


def test_wrong_input_rank_is_a_usage_error(tmp_path, run_cli):
    res = run_cli("convert", src("dense_small"), "-o", tmp_path / "d.onnx", "--input", "features:batch,6,2")
    assert res.code == 2 and "rank" in res.err and "Traceback" not in res.err


@pytest.mark.parametrize(
    ("spec", "expected"), [("x:batch,5,seq", "rank 3"), ("x:batch,7", "does not fit the example input")]
)
def test_input_that_contradicts_the_example_inputs_is_a_usage_error(tmp_path, run_cli, spec, expected):
    """--input must fit the factory's example inputs, as for PyTorch (was: IndexError, or a bogus export)."""
    res = run_cli("convert", src("with_example"), "-o", tmp_path / "ex.onnx", "--input", spec)
    assert res.code == 2, res.err
    assert expected in res.err and "Traceback" not in res.err
    assert files_in(tmp_path) == set()


AUTO_NAMED = """\
import keras


def first():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(3)])


def second():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((6,))
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(4, activation="relu")(inputs)))
"""


@pytest.mark.route("tf2onnx")
def test_auto_named_inputs_do_not_depend_on_what_the_process_built_before(tmp_path):
    """Keras numbers unnamed inputs per process (input_layer_3): each model is named as in a fresh process,
    so `check --update` then `check --force` in one process replays both, and the names stay put."""
    from onnxbridge.gate import check

    (tmp_path / "auto.py").write_text(AUTO_NAMED)
    (tmp_path / "onnxbridge.toml").write_text(
        '[[models]]\nname = "first"\nsource = "auto.py:first"\nonnx = "out/first.onnx"\n\n'
        '[[models]]\nname = "second"\nsource = "auto.py:second"\nonnx = "out/second.onnx"\n'
    )
    import keras

    keras.layers.Dense(1)(keras.Input((2,)))  # this process has numbered an input and a layer already
    assert [r.status for r in check(tmp_path / "onnxbridge.toml", update=True).results] == ["updated"] * 2
    forced = check(tmp_path / "onnxbridge.toml", force=True)
    assert [r.status for r in forced.results] == ["passed"] * 2, [r.message for r in forced.results]
    # the names a fresh process gives each model built alone (before: input_layer_1, _2, ... by history)
    assert [i.name for i in onnx.load(str(tmp_path / "out" / "first.onnx")).graph.input] == ["input_layer"]
    assert [i.name for i in onnx.load(str(tmp_path / "out" / "second.onnx")).graph.input] == ["input_layer"]
    assert keras.Input((2,)).name != "input_layer"  # the process's own numbering came back afterwards
    # independently of the validator: the file at a batch size no case used, against Keras itself
    sys.path.insert(0, str(tmp_path))
    try:
        import auto  # noqa: PLC0415 (the test's own module)

        x = np.random.default_rng(4).standard_normal((7, 6)).astype(np.float32)
        want = np.asarray(auto.second()(x))
        assert_close_relative(ort_run(tmp_path / "out" / "second.onnx", {"input_layer": x})[0], want)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("auto", None)


def test_tensorflow_start_up_lines_never_reach_the_terminal(tmp_path):
    """TensorFlow writes oneDNN / CUDA-stub / cuInit lines from C++ at import and first device use, whatever
    TF_CPP_MIN_LOG_LEVEL says; a user's module importing Keras must not bring them to a fresh CLI run."""
    import subprocess

    (tmp_path / "auto.py").write_text(AUTO_NAMED)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    for source in ("auto.py:first", "first.keras"):
        if source == "first.keras":
            sys.path.insert(0, str(tmp_path))
            try:
                import auto  # noqa: PLC0415 (the test's own module)

                auto.first().save(tmp_path / "first.keras")
            finally:
                sys.path.remove(str(tmp_path))
                sys.modules.pop("auto", None)
        out = subprocess.run(
            [sys.executable, "-m", "onnxbridge", "convert", source, "-o", "first.onnx", "--json"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stderr == "", out.stderr[-2000:]
        assert json.loads(out.stdout)["validation"]["passed"] is True
    x = np.random.default_rng(2).standard_normal((9, 4)).astype(np.float32)
    import keras

    want = np.asarray(keras.saving.load_model(tmp_path / "first.keras")(x))
    (name,) = input_dims(tmp_path / "first.onnx")  # the file keeps the name it was saved with
    assert_close_relative(ort_run(tmp_path / "first.onnx", {name: x})[0], want)
