"""Validation: reference runners, ONNX Runtime sessions and providers, inputs, parity metrics."""
