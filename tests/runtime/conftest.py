"""The runtime tests share the tiny ONNX files and torch nets of the parity tests."""

from tests.parity.conftest import onnx_file, torch_nets  # noqa: F401  (pytest fixtures)
