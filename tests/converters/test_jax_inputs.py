"""The JAX converter's input binding, which needs neither jax nor jax2onnx."""

from __future__ import annotations

import numpy as np

from onnxbridge.converters.jax import JaxConverter
from onnxbridge.specs import SizeRange, declared_ranges, parse_input_specs


def test_example_inputs_keep_the_ranges_declared_in_input():
    specs = parse_input_specs(["x:batch=1..8,4"])
    fitted, feeds, sizes = JaxConverter._inputs(lambda x: x, [np.zeros((2, 4), np.float64)], specs, "m.py:f")
    assert fitted[0].dtype == "float64" and sizes == {"batch": 2}
    assert declared_ranges(fitted) == {"batch": SizeRange(1, 8)}
