"""--input parsing."""

from __future__ import annotations

import pytest

from onnxbridge.errors import UsageError
from onnxbridge.specs import TensorSpec, parse_input_spec, parse_input_specs


def test_named_axes_fixed_dims_and_dtype():
    spec = parse_input_spec("pixel_values:batch,3,224,224:float16")
    assert spec == TensorSpec("pixel_values", ("batch", 3, 224, 224), "float16")
    assert spec.dynamic_axes == {0: "batch"}
    assert spec.shape({"batch": 5}) == (5, 3, 224, 224)
    assert str(spec) == "pixel_values:batch,3,224,224:float16"


def test_dtype_defaults_to_float32_and_aliases():
    assert parse_input_spec("x:2,3").dtype == "float32"
    assert parse_input_spec("ids:batch,seq:long").dtype == "int64"
    assert parse_input_spec("m:batch,seq:BOOL").dtype == "bool"


@pytest.mark.parametrize("bad", ["x", ":1,2", "x:", "x:1,-2", "x:1,2:float32:extra", "x:1.5", "x:1,2:cplx"])
def test_malformed(bad):
    with pytest.raises(UsageError, match="malformed --input"):
        parse_input_spec(bad)


def test_duplicate_names_refused():
    with pytest.raises(UsageError, match="repeated: x"):
        parse_input_specs(["x:1", "x:2"])


def test_missing_axis_size_is_a_usage_error():
    with pytest.raises(UsageError, match="dynamic axis 'seq'"):
        parse_input_spec("x:batch,seq").shape({"batch": 2})


def test_two_ranges_for_one_axis_of_one_input_refused():
    with pytest.raises(UsageError, match="axis 'seq' is given two ranges: 1..4 and 2..8"):
        parse_input_spec("x:seq=1..4,seq=2..8")
    assert parse_input_spec("x:seq=1..4,seq=1..4").ranges == parse_input_spec("x:seq=1..4,seq").ranges
