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
    reg.register(
        "toyfw",
        "tests.test_architecture:Toy",
        FrameworkInfo("toyfw", (".toy",), ("toy.json",), (__name__,), ("numpy",)),
    )
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


# imported everywhere, so the table's header leaves them out (the package itself: `from .. import api`)
_EVERYWHERE = {"errors", "_util", "_version", "specs", "options", "results", "onnxbridge"}
_NOT_IN_TABLE = {"onnxbridge", "__main__", "_version"}  # the package's face, `python -m`, the version string


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _documented_imports() -> dict[str, tuple[set[str], str]]:
    """docs/architecture.md's package table: each row's modules -> (the modules its imports column names, the text)."""
    import re

    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## Packages", 1)[1].split("\n## ", 1)[0]
    header = next(line for line in section.splitlines() if line.startswith("| package"))
    assert set(re.findall(r"`([\w.]+)`", header)) == _EVERYWHERE - {"onnxbridge"}, header
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = tuple(n.removesuffix(".py").rstrip("/") for n in re.findall(r"`([^`]+)`", cells[0]))
        rows[names] = ({n.split(".")[0] for n in re.findall(r"`([\w.]+)`", cells[2])}, cells[2])
    return rows


def test_the_import_table_in_architecture_md_matches_the_code():
    """Each row's imports column names exactly the packages it imports (lazy imports included), and every
    package is a row: an import added or dropped without the table fails here."""
    graph = _arch().import_graph()
    actual: dict[str, set[str]] = {}
    for module, targets in graph.items():
        actual.setdefault(_top(module), set()).update(_top(t) for t in targets)
    rows = _documented_imports()
    listed = {name for names in rows for name in names}
    assert listed == set(actual) - _NOT_IN_TABLE, "a package missing from (or extra in) the table"
    above: set[str] = set()
    for names, (documented, text) in rows.items():
        real = set().union(*(actual[n] for n in names)) - _EVERYWHERE - set(names)
        if "everything above" in text:
            assert real <= above, (names, real - above)
        else:
            assert real == documented & set(actual), (
                names,
                "imports but the table omits",
                real - documented,
                "the table names but not imported",
                documented - real,
            )
        above.update(names)
