"""One fixtures format (inputs::CASE::NAME / outputs::CASE::NAME), and the older forms still read."""

from __future__ import annotations

import numpy as np
import pytest

from onnxbridge.errors import InputError
from onnxbridge.parity.fixtures import INPUTS, OUTPUTS, load_cases, read_fixtures, write_fixtures

from . import onnx_models


def test_written_keys_name_the_side_the_case_and_the_array(tmp_path):
    path = write_fixtures(
        tmp_path / "f.npz",
        inputs=[("seed=0", {"x": np.ones(2)})],
        outputs=[("seed=0", {"y": np.zeros(2)})],
        meta={"source": "m.py:net"},
    )
    with np.load(path) as data:
        assert sorted(data.files) == ["inputs::seed=0::x", "meta", "outputs::seed=0::y"]
    f = read_fixtures(path)
    assert not f.legacy and f.meta == {"source": "m.py:net"}
    assert [label for label, _ in f.inputs] == ["seed=0"] and list(f.outputs[0][1]) == ["y"]


def test_older_files_still_read_as_either_side(tmp_path):
    old = tmp_path / "old.npz"
    np.savez(old, **{"seed=0::x": np.ones(2), "batch=1::x": np.ones(1)})  # v0.1's --save-* files
    assert [label for label, _ in load_cases(old, INPUTS)] == ["seed=0", "batch=1"]
    assert [label for label, _ in load_cases(old, OUTPUTS)] == ["seed=0", "batch=1"]
    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.ones(2))  # made by hand
    [(label, arrays)] = load_cases(plain)
    assert label == "fixture" and list(arrays) == ["x"]


def test_malformed_and_one_sided_files_are_input_errors(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"inputs::x": np.ones(2)})  # no case label
    with pytest.raises(InputError, match="unexpected key"):
        read_fixtures(bad)
    only_inputs = write_fixtures(tmp_path / "in.npz", inputs=[("c", {"x": np.ones(2)})])
    with pytest.raises(InputError, match="holds no outputs"):
        load_cases(only_inputs, OUTPUTS)


def test_expected_alone_replays_a_file_that_holds_both_sides(run_cli, onnx_file, tmp_path):
    a = onnx_file("a.onnx", onnx_models.mlp())
    ins, outs = tmp_path / "in.npz", tmp_path / "out.npz"
    assert run_cli("validate", a, a, "--save-inputs", ins, "--save-outputs", outs).code == 0
    both = write_fixtures(tmp_path / "both.npz", inputs=load_cases(ins, INPUTS), outputs=load_cases(outs, OUTPUTS))
    r = run_cli("validate", a, "--expected", both, "--json")
    assert r.code == 0, r.err
    r = run_cli("validate", a, "--expected", outs)  # outputs only: the inputs must be named
    assert r.code == 2 and "--expected needs --inputs" in r.err


def test_a_malformed_key_or_meta_is_not_blamed_on_pickled_objects(tmp_path):
    """Only numpy's refusal of an object array is about pickling; a key or a meta entry that breaks the
    format says so, with the format's hint."""
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"inputs::x": np.ones(2)})  # no case label
    with pytest.raises(InputError, match="unexpected key") as e:
        read_fixtures(bad)
    assert "pickled" not in e.value.hint and "--save-inputs" in e.value.hint
    meta = tmp_path / "meta.npz"
    np.savez(meta, **{"inputs::c::x": np.ones(2), "meta": np.frombuffer(b"{not json", dtype=np.uint8)})
    with pytest.raises(InputError, match="meta") as e:
        read_fixtures(meta)
    assert "pickled" not in e.value.hint
