"""Metrics and tolerances: one bad element is found by index, --tol per output, top-k, histograms."""

from __future__ import annotations

import numpy as np
import pytest

from onnxbridge.errors import UsageError
from onnxbridge.parity.metrics import (
    ERROR_BIN_EDGES,
    Tolerance,
    compare_output,
    compare_outputs,
    error_histogram,
    parse_tolerances,
)

from . import onnx_models
from .conftest import flat, read_json


def _one_element_off(onnx_file, delta=0.01):
    c = np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8)
    a = onnx_file("a.onnx", onnx_models.two_outputs(c))
    c2 = c.copy()
    c2[1, 5] += delta
    return a, onnx_file("b.onnx", onnx_models.two_outputs(c2))


def test_an_output_that_differs_in_one_element_is_reported_with_its_index(run_cli, onnx_file, tmp_path):
    a, b = _one_element_off(onnx_file)
    rep, md = tmp_path / "r.json", tmp_path / "r.md"
    r = run_cli("validate", a, b, "--report", rep, "--report", md)
    assert r.code == 1
    assert "'y'" in flat(r.out) and "1 element(s) off, worst at [1, 5]" in flat(r.out)
    v = read_json(rep)["validation"]
    ys = [o for c in v["cases"] for o in c["outputs"] if o["name"] == "y"]
    zs = [o for c in v["cases"] for o in c["outputs"] if o["name"] == "z"]
    assert len(ys) == len(zs) == len(v["cases"]) == 3  # every case and every output listed (fixed shapes: no sweep)
    for o in ys:
        assert o["passed"] is False and o["mismatched"] == 1 and o["worst_index"] == [1, 5]
        assert o["max_abs"] == pytest.approx(0.01, rel=1e-3)
    assert all(o["passed"] for o in zs)
    assert "1 off, worst at [1, 5]" in md.read_text()


def test_tol_overrides_one_output_and_keeps_the_others(run_cli, onnx_file, tmp_path):
    a, b = _one_element_off(onnx_file)
    rep = tmp_path / "r.json"
    assert run_cli("validate", a, b, "--tol", "y=0.02", "--report", rep).code == 0
    tols = read_json(rep)["validation"]["tolerances"]
    assert tols["y"] == {"atol": 0.02, "rtol": 1e-3, "dtype": "float32", "from": "--tol"}  # rtol: dtype default
    assert tols["z"] == {"atol": 1e-4, "rtol": 1e-3, "dtype": "float32", "from": "float32 default"}
    # too tight still fails; --atol alone moves the default for every float output
    assert run_cli("validate", a, b, "--tol", "y=0.005,0").code == 1
    assert run_cli("validate", a, b, "--atol", "0.02").code == 0
    # bad --tol: unknown output, malformed, negative, twice
    r = run_cli("validate", a, b, "--tol", "nope=1")
    assert r.code == 2 and "--tol names no output of the model: nope" in r.err and "y, z" in r.err
    for bad in ("y", "y=", "y=1,2,3", "y=-1", "y=nan", "=1"):
        assert run_cli("validate", a, b, "--tol", bad).code == 2, bad
    assert run_cli("validate", a, b, "--tol", "y=1", "--tol", "y=2").code == 2


def test_parse_tolerances():
    assert parse_tolerances(["logits=1e-3,1e-2", "out.0=5"]) == {
        "logits": Tolerance(1e-3, 1e-2),
        "out.0": Tolerance(5.0, None),
    }
    with pytest.raises(UsageError, match="malformed --tol"):
        parse_tolerances(["logits:1e-3"])


def test_integers_stay_exact_under_atol_but_not_under_tol():
    ref = np.array([[1, 2, 3]], dtype=np.int64)
    got = np.array([[1, 2, 4]], dtype=np.int64)
    [o] = compare_outputs(["ids"], [ref], [got], atol=5.0)
    assert not o.passed and o.tolerance_from == "integer default" and o.worst_index == (0, 2)
    [o] = compare_outputs(["ids"], [ref], [got], {"ids": Tolerance(1.0, 0.0)})
    assert o.passed and o.tolerance_from == "--tol"


def test_top1_and_topk_agreement_for_classifier_outputs():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((4, 10)).astype(np.float32)
    got = ref.copy()
    row = got[2]
    first, second = np.argsort(-row)[:2]
    row[first], row[second] = row[second], row[first]  # swap the top two classes of one row
    o = compare_output("logits", ref, got)
    assert o.top1_agreement == pytest.approx(0.75)
    assert o.topk == 5 and o.topk_agreement == pytest.approx(1.0)  # same top-5 set, order aside
    assert not o.passed
    assert compare_output("h", ref[:, :1], got[:, :1]).top1_agreement is None  # one column: not a classifier


def test_error_histogram_counts_every_element_in_its_decade():
    diff = np.array([0.0, 0.0, 5e-10, 3e-5, 3e-5, 0.2, 1e5, np.inf, np.nan])
    h = error_histogram(diff)
    assert len(h) == len(ERROR_BIN_EDGES) == 14
    assert sum(h) == diff.size
    assert h[0] == 2 and h[1] == 1 and h[6] == 2 and h[10] == 1 and h[13] == 3
    o = compare_output("y", np.zeros((3, 3), np.float32), np.full((3, 3), 1e-6, np.float32))
    assert sum(o.error_histogram) == 9 and o.error_histogram[4] == 9


def test_float16_side_is_judged_at_float16_tolerance():
    ref = np.linspace(-3, 3, 50, dtype=np.float32).reshape(5, 10)
    got = ref.astype(np.float16)
    [o] = compare_outputs(["y"], [ref], [got])
    assert o.passed and o.atol == 1e-2 and o.tolerance_from == "float16 default"
    [o] = compare_outputs(["y"], [ref], [got.astype(np.float32) + np.float32(0.05)])
    assert not o.passed and o.atol == 1e-4


def test_bfloat16_compute_dtype_by_name_needs_no_prior_ml_dtypes_import():
    """compute_dtype() names bfloat16 as a string; numpy only knows that name once ml_dtypes is imported."""
    import subprocess
    import sys

    code = (
        "import sys; from onnxbridge.parity.metrics import looser_dtype; "
        "assert 'ml_dtypes' not in sys.modules; print(looser_dtype('bfloat16', 'float32'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "bfloat16"
