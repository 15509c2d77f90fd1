"""Source-file discovery, content hashes with stat reuse, and the cache file (no framework needed)."""

from __future__ import annotations

import json
import os
import time

from onnxbridge.gate.cache import Cache, FileHasher, Fingerprint, package_versions, source_packages
from onnxbridge.gate.deps import source_files
from onnxbridge.gate.manifest import ModelEntry


def entry(source: str, **kw) -> ModelEntry:
    return ModelEntry(name="m", source=source, onnx="m.onnx", fixtures="m.npz", **kw)


def test_source_files_follow_project_imports_only(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("from .blocks import Block\n")
    (tmp_path / "pkg" / "sub" / "blocks.py").write_text("from ..consts import K\nimport numpy\n")
    (tmp_path / "pkg" / "consts.py").write_text("K = 3\n")
    (tmp_path / "helpers.py").write_text("X = 1\n")
    (tmp_path / "unused.py").write_text("Y = 1\n")
    (tmp_path / "models.py").write_text(
        "import os, torch\nimport helpers\nfrom pkg.sub import Block\n\ndef net():\n    import json\n"
    )
    found = source_files(entry("models.py:net"), tmp_path)
    assert found.files == (
        "helpers.py",
        "models.py",
        "pkg/__init__.py",
        "pkg/consts.py",
        "pkg/sub/__init__.py",
        "pkg/sub/blocks.py",
    )
    assert not found.notes


def test_source_files_of_a_module_source_and_watch_globs(tmp_path):
    (tmp_path / "src" / "mypkg").mkdir(parents=True)
    (tmp_path / "src" / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "src" / "mypkg" / "nets.py").write_text("from . import util\n")
    (tmp_path / "src" / "mypkg" / "util.py").write_text("")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "a.yaml").write_text("a: 1\n")
    found = source_files(entry("mypkg.nets:build", watch=("conf/*.yaml", "none/*.txt")), tmp_path)
    assert found.files == ("conf/a.yaml", "src/mypkg/__init__.py", "src/mypkg/nets.py", "src/mypkg/util.py")
    assert any("matches no file" in n for n in found.notes)
    outside = source_files(entry("torchvision.models:resnet18"), tmp_path)
    assert outside.files == () and "not a file in the project" in outside.notes[0]


def test_source_files_of_a_syntax_error_still_lists_the_file(tmp_path):
    (tmp_path / "models.py").write_text("def broken(:\n")
    assert source_files(entry("models.py:net"), tmp_path).files == ("models.py",)


def test_hasher_reuses_hashes_while_size_and_mtime_hold(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"x" * 100)
    old = time.time() - 60
    os.utime(path, (old, old))
    first = FileHasher(tmp_path)
    sha = first.digest("a.bin")
    assert first.hashed == 1 and first.digest("missing.bin") is None
    again = FileHasher(tmp_path, first.table)
    assert again.digest("a.bin") == sha and again.hashed == 0
    path.write_bytes(b"y" * 100)  # same size, new mtime: hashed again
    third = FileHasher(tmp_path, first.table)
    assert third.digest("a.bin") != sha and third.hashed == 1
    # a file written just now is recorded without its stat signature (it may change within the tick)
    assert third.table["a.bin"][:2] == [-1, -1]
    assert FileHasher(tmp_path, third.table).digest("a.bin") == third.table["a.bin"][2]


def test_fingerprint_keys_and_changes():
    base = Fingerprint("e", "o", "f", {"models.py": "1"}, {"onnxruntime": "1.0"}, {"torch": "2.0"})
    onnx_changed = Fingerprint("e", "o2", "f", {"models.py": "1"}, {"onnxruntime": "1.0"}, {"torch": "2.0"})
    assert onnx_changed.source_key == base.source_key and onnx_changed.replay_key != base.replay_key
    assert onnx_changed.changes(base, source=False) == ["ONNX file changed"]
    src = Fingerprint("e", "o", "f", {"models.py": "2", "new.py": "3"}, {"onnxruntime": "1.0"}, {"torch": "2.1"})
    assert src.replay_key == base.replay_key and src.source_key != base.source_key
    assert src.changes(base, source=True) == ["source changed: models.py, new.py", "torch 2.0 -> 2.1"]
    assert Fingerprint.from_dict(json.loads(json.dumps(base.__dict__))) == base


def test_versions_come_from_package_metadata():
    from importlib import metadata

    v = package_versions(source_packages("pytorch"))
    assert v["torch"] == metadata.version("torch") and v["onnxbridge"]
    assert "tensorflow" not in v and "tensorflow" in package_versions(source_packages("keras"))
    assert package_versions(("surely-not-installed-pkg",))["surely-not-installed-pkg"] == "-"


def test_cache_roundtrip_and_bad_cache_files(tmp_path):
    cache = Cache.load(tmp_path)
    assert cache.models == {} and cache.note is None
    fp = Fingerprint("e", "o", "f", {"models.py": "1"})
    cache.record_pass("m", fp, ["m.onnx", "models.py"], framework="pytorch", summary="ok")
    cache.record_pass("gone", fp, ["x.onnx"], framework=None, summary="ok")
    assert cache.save({"m.onnx": [1, 2, "a"], "models.py": [3, 4, "b"], "other": [5, 6, "c"]}, keep={"m"}) is None
    data = json.loads((tmp_path / ".onnxbridge" / "cache.json").read_text())
    assert set(data["models"]) == {"m"} and set(data["files"]) == {"m.onnx", "models.py"}
    assert (tmp_path / ".onnxbridge" / ".gitignore").read_text().strip().endswith("*")
    back = Cache.load(tmp_path).last_pass("m")
    assert back is not None and back[0] == fp and back[1]["framework"] == "pytorch"
    (tmp_path / ".onnxbridge" / "cache.json").write_text("{not json")
    broken = Cache.load(tmp_path)
    assert broken.models == {} and "corrupt" in broken.note
    (tmp_path / ".onnxbridge" / "cache.json").write_text('{"format": 99}')
    assert "another format" in Cache.load(tmp_path).note
    assert [p.name for p in (tmp_path / ".onnxbridge").iterdir() if p.name.startswith(".cache")] == []


def test_an_unchanged_cache_is_not_rewritten(tmp_path):
    cache = Cache.load(tmp_path)
    cache.record_pass("m", Fingerprint("e", "o", "f"), ["m.onnx"], framework=None, summary="ok")
    cache.save({"m.onnx": [1, 2, "a"]}, keep={"m"})
    path = tmp_path / ".onnxbridge" / "cache.json"
    os.utime(path, (1, 1))
    again = Cache.load(tmp_path)
    assert again.save({"m.onnx": [1, 2, "a"]}, keep={"m"}) is None
    assert path.stat().st_mtime == 1  # same content: not written
    again.save({"m.onnx": [1, 3, "a"]}, keep={"m"})
    assert path.stat().st_mtime > 1


def test_source_files_has_no_cap_and_rescans_parse_only_what_changed(tmp_path, monkeypatch):
    """v0.1 stopped silently at 2000 files: a change in the 2500th module went unseen."""
    import ast

    from onnxbridge.gate import deps

    n = 2600
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for i in range(n):  # a chain: m0 imports m1 imports m2 ...
        (pkg / f"m{i}.py").write_text(f"from . import m{i + 1}\n" if i + 1 < n else "LAST = 1\n")
    (tmp_path / "models.py").write_text("import pkg.m0\n")
    imports: dict = {}
    parsed = []
    real = ast.parse
    monkeypatch.setattr(deps.ast, "parse", lambda *a, **k: parsed.append(1) or real(*a, **k))
    found = source_files(entry("models.py:net"), tmp_path, imports)
    assert len(found.files) == n + 2 and f"pkg/m{n - 1}.py" in found.files
    assert len(parsed) == n + 2
    parsed.clear()
    last = pkg / f"m{n - 1}.py"
    last.write_text("LAST = 2  # changed\n")
    again = source_files(entry("models.py:net"), tmp_path, imports)
    assert again.files == found.files and len(parsed) == 1  # only the changed file is parsed again


def test_source_files_says_how_many_when_there_are_very_many(tmp_path, monkeypatch):
    from onnxbridge.gate import deps

    monkeypatch.setattr(deps, "MANY_FILES", 3)
    for i in range(5):
        (tmp_path / f"m{i}.py").write_text("")
    (tmp_path / "models.py").write_text("import m0, m1, m2, m3, m4\n")
    found = source_files(entry("models.py:net"), tmp_path)
    assert len(found.files) == 6 and "depends on 6 project files" in found.notes[0]
