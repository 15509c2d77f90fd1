"""SOURCE objects: factories called, and what is said when they fail."""

from __future__ import annotations

import pytest

from onnxbridge.errors import InputError, UsageError
from onnxbridge.sources import resolve_factory


def test_a_factory_that_needs_arguments_is_a_usage_error():
    def build(size):
        return object()

    with pytest.raises(UsageError, match="could not be called without arguments"):
        resolve_factory(build, "m.py:build")


def test_a_type_error_inside_a_factory_is_reported_as_raised_not_as_its_signature():
    def build():
        return dict(1, 2, 3)  # the factory's own bug: TypeError

    with pytest.raises(InputError, match=r"calling m.py:build\(\) raised TypeError") as info:
        resolve_factory(build, "m.py:build")
    assert "without arguments" not in str(info.value)
