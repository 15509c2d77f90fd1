"""JAX / Flax through jax2onnx, validated against JAX eager (``pip install onnxbridge[jax]``; skipped
without it: jax, flax and jax2onnx are not in the dev install)."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import onnxbridge

pytest.importorskip("jax2onnx", reason="onnxbridge[jax] not installed")

MODELS = """
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


class MLP(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(4, 8, rngs=rngs)
        self.l2 = nnx.Linear(8, 3, rngs=rngs)

    def __call__(self, x):
        return self.l2(nnx.gelu(self.l1(x)))


def mlp():
    return MLP(nnx.Rngs(0)), (np.zeros((2, 4), np.float32),)


@jax.jit
def scores(x, ids):
    return {"total": jnp.tanh(x).sum(-1) + ids.astype(jnp.float32), "top": jnp.max(x, axis=-1)}
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    path = tmp_path_factory.mktemp("jax") / "models.py"
    path.write_text(textwrap.dedent(MODELS))
    return path


@pytest.mark.route("jax2onnx")
def test_flax_module_converts_with_parity_and_a_dynamic_batch(models, tmp_path):
    import jax.numpy as jnp
    import onnxruntime as ort

    out = tmp_path / "mlp.onnx"
    report = onnxbridge.convert(f"{models}:mlp", out, inputs=["x:batch,4"])
    assert report.framework == "jax" and report.conversion.route == "jax2onnx"
    assert report.passed is True, report.validation.summary()
    assert {"batch=1", "batch=5"} <= {c.label for c in report.validation.cases}
    # batch 7, a size the validator did not use, against the Flax module itself
    from onnxbridge.sources import load_python_object, parse_source

    module, _ = load_python_object(parse_source(f"{models}:mlp"))()
    x = np.random.default_rng(3).standard_normal((7, 4)).astype(np.float32)
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, np.asarray(module(jnp.asarray(x))), rtol=1e-4, atol=1e-5)


def test_jitted_function_with_integer_input_and_dict_outputs(models, tmp_path):
    out = tmp_path / "scores.onnx"
    report = onnxbridge.convert(f"{models}:scores", out, inputs=["x:batch,4", "ids:batch:int32"])
    assert report.framework == "jax" and report.passed is True, report.validation.summary()
    assert set(report.conversion.output_names) == {"top", "total"}
    import onnxruntime as ort

    from onnxbridge.sources import load_python_object, parse_source

    fn = load_python_object(parse_source(f"{models}:scores"))
    rng = np.random.default_rng(4)
    feeds = {"x": rng.standard_normal((6, 4)).astype(np.float32), "ids": rng.integers(0, 9, 6).astype(np.int32)}
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    want = fn(**feeds)
    for name in ("top", "total"):
        np.testing.assert_allclose(got[name], np.asarray(want[name]), rtol=1e-5, atol=1e-5)
