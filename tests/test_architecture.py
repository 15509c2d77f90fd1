"""The package's shape: no import cycles (lazy imports included), constants derived from the registry."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _arch():
    spec = importlib.util.spec_from_file_location("arch_report", ROOT / "scripts" / "arch_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_import_cycles():
    assert _arch().import_cycles() == []


def test_a_lazy_import_that_closes_a_loop_is_found(tmp_path):
    pkg = tmp_path / "onnxbridge"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import x\n")
    assert _arch().import_cycles(tmp_path) == [["onnxbridge.a", "onnxbridge.b"]]


def test_framework_forms_come_from_the_registry(tmp_path):
    """A converter registered with its SOURCE forms is detected from suffix, folder and object."""
    from onnxbridge.converters.registry import ConverterRegistry, FrameworkInfo
    from onnxbridge.errors import UsageError
    from onnxbridge.sources import detect_framework, parse_source

    class Toy:
        pass

    reg = ConverterRegistry()
    reg.register("toyfw", "tests.test_architecture:Toy",
                 FrameworkInfo("toyfw", (".toy",), ("toy.json",), (__name__,), ("numpy",)))
    (tmp_path / "m.toy").write_bytes(b"x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "toy.json").write_text("{}")
    assert parse_source(str(tmp_path / "m.toy"), registry=reg).framework == "toyfw"
    assert parse_source(str(tmp_path / "folder"), registry=reg).framework == "toyfw"
    assert detect_framework(Toy(), reg) == "toyfw"
    assert reg.export_packages("toyfw") == ("numpy",)
    with pytest.raises(UsageError, match="use one of toyfw"):
        parse_source(str(tmp_path / "m.toy"), "pytorch", registry=reg)
    (tmp_path / "m.unknown").touch()
    with pytest.raises(UsageError, match=r"\.toy"):  # the forms a message lists are the registry's
        parse_source(str(tmp_path / "m.unknown"), registry=reg)
