"""Files from the future: an IR version or opset newer than the installed onnx / onnxruntime
support is reported as such, with the versions, and never read as if it were fine."""

from __future__ import annotations

import onnx
import pytest

from tests.parity import onnx_models


def _stamped(tmp_path, name: str, *, ir: int | None = None, opset: int | None = None):
    model = onnx_models.mlp()
    if ir is not None:
        model.ir_version = ir
    if opset is not None:
        model.opset_import[0].version = opset
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def _newest_ort_refuses(kind: str) -> int | None:
    """The oldest IR version / opset that onnx knows and onnxruntime refuses (None: none here)."""
    from onnxbridge.runtime.support import runtime_problems

    top = onnx.IR_VERSION if kind == "ir" else onnx.defs.onnx_opset_version()
    for v in range(top - 4, top + 1):
        model = onnx_models.mlp()
        if kind == "ir":
            model.ir_version = v
        else:
            model.opset_import[0].version = v
        if runtime_problems(model):
            return v
    return None


@pytest.mark.parametrize("stamp", ["ir", "opset"])
def test_newer_than_onnx_is_refused_by_every_verb(tmp_path, run_cli, stamp):
    kw = {"ir": onnx.IR_VERSION + 1} if stamp == "ir" else {"opset": onnx.defs.onnx_opset_version() + 1}
    path = _stamped(tmp_path, "future.onnx", **kw)
    want = f"IR version {kw['ir']}" if stamp == "ir" else f"opset {kw['opset']} of ai.onnx"
    for args in (
        ["inspect", path],
        ["validate", path, path],
        ["simplify", path, "-o", tmp_path / "s.onnx"],
        ["bench", path, "--runs", "1", "--warmup", "0"],
    ):
        r = run_cli(*args)
        assert r.code == 2, (args[0], r.err)
        assert f"newer than the installed onnx {onnx.__version__} supports" in r.err and want in r.err, r.err
        assert "Traceback" not in r.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["future.onnx"]


@pytest.mark.parametrize("stamp", ["ir", "opset"])
def test_newer_than_onnxruntime_warns_in_inspect_and_refuses_elsewhere(tmp_path, run_cli, stamp):
    import onnxruntime as ort

    version = _newest_ort_refuses(stamp)
    if version is None:
        pytest.skip(f"onnxruntime {ort.__version__} reads every {stamp} onnx {onnx.__version__} knows")
    path = _stamped(tmp_path, "ahead.onnx", **{stamp: version})
    r = run_cli("inspect", path)
    assert r.code == 0 and f"the installed onnxruntime {ort.__version__} cannot load this model" in r.err, r.err
    r = run_cli("inspect", path, "--json")
    assert "cannot load" in r.out  # in the JSON's warnings too
    for args in (
        ["validate", path, path],
        ["simplify", path, "-o", tmp_path / "s.onnx"],
        ["bench", path, "--runs", "1", "--warmup", "0"],
    ):
        r = run_cli(*args)
        assert r.code == 2, (args[0], r.err)
        assert f"newer than the installed onnxruntime {ort.__version__} supports" in r.err, r.err
        assert "reads up to" in r.err or "supports up to" in r.err, r.err
