"""Golden fixtures: written by one run, replayed by another without the source framework."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from onnxbridge.errors import InputError, UsageError
from onnxbridge.parity.fixtures import load_cases

from . import onnx_models
from .conftest import flat

REPLAY = textwrap.dedent("""
    import json, sys
    from onnxbridge import api
    r = api.validate(sys.argv[1], inputs_file=sys.argv[2], expected_file=sys.argv[3])
    print(json.dumps({"passed": r.passed, "torch": "torch" in sys.modules,
                      "summary": r.validation.summary(), "reference": r.validation.reference}))
""")


def _replay(model, inputs, expected) -> dict:
    import json

    env = dict(os.environ, PYTHONPATH=os.getcwd())
    out = subprocess.run(
        [sys.executable, "-c", REPLAY, str(model), str(inputs), str(expected)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_fixture_written_by_convert_replays_without_torch_and_catches_changed_weights(run_cli, torch_nets, tmp_path):
    model, ins, outs = tmp_path / "mlp.onnx", tmp_path / "in.npz", tmp_path / "out.npz"
    r = run_cli(
        "convert",
        f"{torch_nets}:mlp",
        "-o",
        model,
        "--input",
        "x:batch,16",
        "--save-inputs",
        ins,
        "--save-outputs",
        outs,
    )
    assert r.code == 0, r.out + r.err
    cases = load_cases(ins)
    assert [label for label, _ in cases] == ["seed=0", "seed=1", "seed=2", "batch=1", "batch=5", "batch=11"]
    assert cases[3][1]["x"].shape == (1, 16) and cases[4][1]["x"].shape == (5, 16)

    result = _replay(model, ins, outs)
    assert result == {"passed": True, "torch": False, "summary": result["summary"], "reference": "golden fixtures"}

    # the same ONNX with one weight nudged: replay must now fail
    m = onnx.load(str(model))
    init = max(m.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    arr = numpy_helper.to_array(init).copy()
    arr.flat[0] += 0.5
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    changed = tmp_path / "changed.onnx"
    onnx.save(m, str(changed))
    result = _replay(changed, ins, outs)
    assert result["passed"] is False and result["torch"] is False
    assert "out of tolerance" in result["summary"]
    r = run_cli("validate", changed, "--inputs", ins, "--expected", outs)
    assert r.code == 1


def test_fixture_round_trip_between_onnx_runs(run_cli, onnx_file, tmp_path):
    a = onnx_file("a.onnx", onnx_models.mlp())
    ins, outs = tmp_path / "in.npz", tmp_path / "out.npz"
    assert run_cli("validate", a, a, "--save-inputs", ins, "--save-outputs", outs, "--seed", "7").code == 0
    assert run_cli("validate", a, "--inputs", ins, "--expected", outs).code == 0
    w = list(onnx_models.mlp_weights())
    w[3] = w[3] + np.eye(1, 10, 4, dtype=np.float32)[0] * 1e-2  # one bias element
    b = onnx_file("b.onnx", onnx_models.mlp(w))
    r = run_cli("validate", b, "--inputs", ins, "--expected", outs)
    assert r.code == 1
    assert "'logits'" in flat(r.out) and "worst at [" in flat(r.out)


def test_replay_refuses_mismatched_or_bad_files(run_cli, onnx_file, tmp_path):
    a = onnx_file("a.onnx", onnx_models.mlp())
    ins = tmp_path / "in.npz"
    np.savez(ins, x=np.ones((2, 16), np.float32))
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, other=np.ones((2, 10), np.float32))
    r = run_cli("validate", a, "--inputs", ins, "--expected", wrong)
    assert r.code == 2 and "no expected values for output(s) logits" in r.err
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    assert run_cli("validate", a, "--inputs", garbage, "--expected", wrong).code == 2
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(InputError, match="pickled"):
        load_cases(pickled)
    r = run_cli("validate", a, "--expected", wrong)
    assert r.code == 2 and "--expected needs --inputs" in r.err
    with pytest.raises(UsageError):
        from onnxbridge import api

        api.validate(str(a))


def test_replay_reads_each_fixture_file_once(onnx_file, tmp_path, monkeypatch):
    from onnxbridge import api
    from onnxbridge.parity import fixtures

    a = onnx_file("a.onnx", onnx_models.mlp())
    ins, outs = tmp_path / "in.npz", tmp_path / "out.npz"
    api.validate(str(a), str(a), save_inputs=ins, save_outputs=outs)
    read = []
    real = fixtures.read_fixtures
    monkeypatch.setattr(fixtures, "read_fixtures", lambda path, **kw: read.append(path) or real(path, **kw))
    assert api.validate(str(a), inputs_file=ins, expected_file=outs).passed
    assert sorted(map(str, read)) == sorted([str(ins), str(outs)])


def test_saved_fixtures_never_overwrite_the_fixtures_read(onnx_file, tmp_path):
    from onnxbridge import api

    a = onnx_file("a.onnx", onnx_models.mlp())
    ins, outs = tmp_path / "in.npz", tmp_path / "out.npz"
    api.validate(str(a), str(a), save_inputs=ins, save_outputs=outs)
    before = ins.read_bytes(), outs.read_bytes()
    with pytest.raises(UsageError, match="never overwrites its input"):
        api.validate(str(a), str(a), inputs_file=ins, save_outputs=ins)
    with pytest.raises(UsageError, match="never overwrites its input"):
        api.validate(str(a), inputs_file=ins, expected_file=outs, save_outputs=outs)
    with pytest.raises(UsageError, match="never overwrites its input"):  # refused before the source is read
        api.convert("models.py:net", ins, inputs_file=ins)
    with pytest.raises(UsageError, match="never overwrites its input"):
        api.convert("models.py:net", tmp_path / "m.onnx", inputs_file=ins, save_outputs=ins)
    assert (ins.read_bytes(), outs.read_bytes()) == before
