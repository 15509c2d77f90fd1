"""The converter registry, entry points, and the guard that every registered route has a test."""

from __future__ import annotations

import ast
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from onnxbridge.converters.registry import ConverterRegistry, default_registry
from onnxbridge.errors import UsageError

TESTS = Path(__file__).resolve().parent.parent


def test_duplicate_registration_is_an_error():
    reg = ConverterRegistry()
    reg.register("pytorch", "onnxbridge.converters.pytorch:TorchConverter")
    with pytest.raises(UsageError, match="already registered") as e:
        reg.register("pytorch", object)
    assert e.value.exit_code == 2


def test_unknown_framework_is_a_usage_error():
    with pytest.raises(UsageError, match="no converter for framework 'cobol'"):
        ConverterRegistry().get("cobol")


def test_entry_points_are_loaded_lazily_and_clashes_refused():
    reg = ConverterRegistry()
    ep = EntryPoint("myfw", "onnxbridge.converters.pytorch:TorchConverter", "onnxbridge.converters")
    reg.load_entry_points([ep])
    assert "myfw" in reg.names()
    assert reg.get("myfw").framework == "pytorch"
    reg.register("other", "x:y")
    with pytest.raises(UsageError, match="clashes with the registered at run time converter") as e:
        reg.load_entry_points([EntryPoint("other", "a:b", "onnxbridge.converters")])
    assert e.value.exit_code == 2 and "rename its entry point" in e.value.hint


def test_a_plugin_named_like_a_builtin_is_refused_with_exit_2():
    """docs/plugins.md: a name that clashes with a built-in is refused (a usage error naming both, not exit 4)."""
    reg = ConverterRegistry()
    reg.register("pytorch", "onnxbridge.converters.pytorch:TorchConverter", origin="built-in")
    reg.load_entry_points(
        [EntryPoint("pytorch", "onnxbridge.converters.pytorch:TorchConverter", "onnxbridge.converters")]
    )  # our own, advertised again: fine
    with pytest.raises(UsageError, match="'pytorch' = 'evil:Conv'.*clashes with the built-in converter") as e:
        reg.load_entry_points([EntryPoint("pytorch", "evil:Conv", "onnxbridge.converters")])
    assert e.value.exit_code == 2
    assert reg.get("pytorch").framework == "pytorch"  # the built-in stands


def test_default_registry_has_the_builtins():
    assert "pytorch" in default_registry().names()


def _route_markers() -> set[str]:
    """Every name in @pytest.mark.route("...") across the test suite."""
    names: set[str] = set()
    for path in TESTS.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "route"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(node.args[0].value)
    return names


def test_every_registered_route_has_a_test():
    """Like optimum's guard: a route nobody tests is a route that silently rots."""
    covered = _route_markers()
    missing = []
    for fw in default_registry().names():
        cls = default_registry().get(fw)
        for route in getattr(cls, "route_names", ()):
            if route not in covered:
                missing.append(f"{fw}: {route}")
    assert not missing, f"routes without a @pytest.mark.route test: {missing}"
    assert getattr(default_registry().get("pytorch"), "route_names", ())
