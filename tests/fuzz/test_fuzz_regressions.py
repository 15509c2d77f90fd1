"""Inputs the fuzz harness found crashing a loader, kept as plain tests (fixed in onnxio)."""

from __future__ import annotations

import onnx
import pytest

from onnxbridge.errors import InputError
from tests.parity import onnx_models

from .harness import loads_or_refuses


def _external(tmp_path, location: str):
    model = onnx_models.mlp()
    init = model.graph.initializer[0]
    init.ClearField("raw_data")
    init.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "0")):
        entry = init.external_data.add()
        entry.key, entry.value = key, value
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("location", ["a" * 300, "x\x00y", "a/" * 3000 + "b"])
def test_unusable_external_location_is_an_input_error(tmp_path, location):
    """Found: OSError 'File name too long' escaped load_onnx (exit 4 instead of 2)."""
    from onnxbridge.onnxio import load_onnx

    path = _external(tmp_path, location)
    with pytest.raises(InputError):
        load_onnx(path)


@pytest.mark.parametrize("elem_type", [29, 0, 99])
def test_inputs_of_a_type_numpy_lacks_are_described_not_crashed_on(tmp_path, run_cli, elem_type):
    """Found: `inspect` died with KeyError: 29 (FLOAT4E2M1 has no numpy dtype), exit 4."""
    from onnxbridge.onnxio import model_info

    model = onnx_models.mlp()
    model.graph.input[0].type.tensor_type.elem_type = elem_type
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    info = loads_or_refuses(lambda: model_info(path), tmp_path)
    if info is not None:
        assert info.inputs[0]["dtype"] in ("FLOAT4E2M1", "unknown")
    r = run_cli("inspect", path)
    assert r.code in (0, 2) and "internal error" not in r.err, r.err


@pytest.mark.parametrize("text", ["Traceback", "x:1:Traceback", 'File "a.py", line 3'])
def test_a_message_may_echo_an_input_that_looks_like_a_traceback(tmp_path, text):
    """Found: scripts/fuzz.sh flagged --input 'Traceback' because the refusal quoted it."""
    from onnxbridge.specs import parse_input_spec

    assert loads_or_refuses(lambda: parse_input_spec(text), tmp_path, echoes=[text]) is None


def test_the_harness_still_flags_a_traceback_the_input_did_not_hold(tmp_path):
    from onnxbridge.errors import UsageError

    from .harness import traceback_signs

    def leaks():
        raise UsageError('bad --input: Traceback (most recent call last):\n  File "x.py", line 1, in f')

    with pytest.raises(AssertionError):
        loads_or_refuses(leaks, tmp_path, echoes=["x:1"])
    assert traceback_signs('  File "x.py", line 1', echoes=["Traceback"]) == ['File "[^"]*", line \\d+']
    assert traceback_signs("unknown dtype 'Traceback'", echoes=["x:1:Traceback"]) == []
