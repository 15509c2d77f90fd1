"""Crash-safe publication: a process that dies at any step leaves the old set or the new one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from onnxbridge.errors import InputError
from onnxbridge.publish import PREFIX, pending, publish, recover, scratch_dir, temp_name


def _ours(*folders: Path) -> list[str]:
    return sorted(p.name for f in folders for p in f.iterdir() if p.name.startswith(PREFIX))


def _state(targets: dict[str, Path]) -> dict[str, str | None]:
    return {k: (p.read_text() if p.exists() else None) for k, p in targets.items()}


def _targets(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    return {
        "onnx": tmp_path / "a" / "m.onnx",
        "data": tmp_path / "a" / "m.onnx.data",
        "fixtures": tmp_path / "b" / "m.npz",
    }


def _new_files(tmp_path: Path, targets: dict[str, Path], tag: str) -> dict[Path, Path]:
    src = tmp_path / f"src-{tag}"
    src.mkdir(exist_ok=True)
    files = {}
    for key, target in targets.items():
        (src / key).write_text(f"{tag}:{key}")
        files[target] = src / key
    return files


def test_publish_moves_every_file_and_leaves_nothing(tmp_path):
    targets = _targets(tmp_path)
    publish(_new_files(tmp_path, targets, "old"))
    publish(_new_files(tmp_path, targets, "new"))
    assert _state(targets) == {k: f"new:{k}" for k in targets}
    assert _ours(tmp_path / "a", tmp_path / "b") == []


def test_publish_removes_what_the_new_set_no_longer_has(tmp_path):
    targets = _targets(tmp_path)
    publish(_new_files(tmp_path, targets, "old"))
    new = _new_files(tmp_path, targets, "new")
    del new[targets["data"]]
    publish(new, remove=[targets["data"]])
    assert not targets["data"].exists() and targets["onnx"].read_text() == "new:onnx"


def _crash_at(n: int, tmp_path: Path, targets: dict[str, Path]) -> None:
    """Fork a child that publishes the new set and dies (os._exit, as kill -9: no cleanup) at its
    n-th os.replace."""
    files = _new_files(tmp_path, targets, "new")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        calls = [0]
        real = os.replace

        def dying_replace(a, b):
            if calls[0] == n:
                os._exit(9)
            calls[0] += 1
            real(a, b)

        os.replace = dying_replace
        try:
            publish(files)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status)


def test_a_crash_at_any_step_leaves_old_or_new_never_a_mix(tmp_path):
    """Every os.replace of a publication is a point where the writer may die (7 here: 3 into
    staging, the journal, 3 into place). Readers either see the old set, or refuse the pair as
    incomplete; after recover() the set is whole: all old or all new."""
    old = {k: f"old:{k}" for k in ("onnx", "data", "fixtures")}
    new = {k: f"new:{k}" for k in old}
    seen = []
    for n in range(8):
        root = tmp_path / str(n)
        root.mkdir()
        targets = _targets(root)
        publish(_new_files(root, targets, "old"))
        _crash_at(n, root, targets)
        state = _state(targets)
        journal = pending(targets["onnx"])
        if journal is None:  # dead before the commit (or not dead at all: n = 7)
            assert state == (old if n < 4 else new), (n, state)
        else:
            assert pending(targets["fixtures"]) == journal  # every file of the set says so
        recover(root / "a", root / "b")  # what the next run does first
        final = _state(targets)
        assert final in (old, new), (n, final)
        assert _ours(root / "a", root / "b") == [], n
        seen.append("new" if final == new else "old")
    assert seen == ["old"] * 4 + ["new"] * 4  # dying before the journal keeps the old, after it the new


def test_a_reader_refuses_an_interrupted_pair(tmp_path, tiny_onnx):
    from onnxbridge.onnxio import load_onnx, save_onnx
    from onnxbridge.parity.fixtures import read_fixtures, write_fixtures

    onnx_path, fixtures = tmp_path / "m.onnx", tmp_path / "m.npz"
    save_onnx(tiny_onnx, onnx_path)
    write_fixtures(fixtures, inputs=[("c", {"x": np.zeros(3, np.float32)})])
    staged = {onnx_path: tmp_path / "new.onnx", fixtures: tmp_path / "new.npz"}
    save_onnx(tiny_onnx, tmp_path / "new.onnx")
    write_fixtures(tmp_path / "new.npz", inputs=[("c", {"x": np.ones(3, np.float32)})])
    pid = os.fork()
    if pid == 0:  # pragma: no cover - dies after the journal and one rename into place
        calls = [0]
        real = os.replace

        def dying_replace(a, b):
            if calls[0] == 4:
                os._exit(9)
            calls[0] += 1
            real(a, b)

        os.replace = dying_replace
        publish(staged)
        os._exit(0)
    os.waitpid(pid, 0)
    with pytest.raises(InputError, match="incomplete"):
        load_onnx(onnx_path)
    with pytest.raises(InputError, match="incomplete"):
        read_fixtures(fixtures)
    assert recover(tmp_path)
    load_onnx(onnx_path)
    assert read_fixtures(fixtures).inputs[0][1]["x"].tolist() == [1, 1, 1]


def _dead_pid() -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def test_recover_removes_temp_files_of_dead_runs_only(tmp_path):
    dead = tmp_path / f"{PREFIX}{_dead_pid()}-0000abcd-model.onnx.tmp"
    dead.write_text("partial")
    dead_dir = tmp_path / f"{PREFIX}{_dead_pid()}-0000abcd"
    dead_dir.mkdir()
    (dead_dir / "model.onnx.data").write_text("partial")
    live = tmp_path / temp_name("model.onnx.tmp")  # this process: still writing
    live.write_text("in progress")
    foreign = tmp_path / ".model.onnx.tmp"  # not ours: never touched
    foreign.write_text("x")
    done = recover(tmp_path)
    assert len(done) == 2 and not dead.exists() and not dead_dir.exists()
    assert live.exists() and foreign.exists()


def test_check_output_path_cleans_what_a_killed_run_left(tmp_path):
    from onnxbridge.fsutil import check_output_path

    left = tmp_path / f"{PREFIX}{_dead_pid()}-0000abcd-out.onnx.tmp"
    left.write_text("partial")
    check_output_path(tmp_path / "out.onnx")
    assert not left.exists()


def test_scratch_dir_is_ours_and_beside_the_target(tmp_path):
    folder = scratch_dir(tmp_path)
    assert folder.parent == tmp_path and folder.name.startswith(f"{PREFIX}{os.getpid()}-")


def test_external_data_pair_round_trips_and_a_small_model_drops_the_old_data(tmp_path, tiny_onnx):
    from onnxbridge.onnxio import external_files, load_onnx, save_onnx

    out = tmp_path / "m.onnx"
    save_onnx(tiny_onnx, out, external_data=True)
    model = load_onnx(out)
    assert external_files(model) == ["m.onnx.data"] and (tmp_path / "m.onnx.data").exists()
    save_onnx(tiny_onnx, out)  # the same model, weights inline: the old data file goes with it
    assert not (tmp_path / "m.onnx.data").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_journal_is_plain_json_naming_relative_paths(tmp_path):
    """The journal survives the project folder being moved (paths relative to the journal)."""
    from onnxbridge import publish as pub

    targets = _targets(tmp_path)
    journal = tmp_path / "a" / f"{temp_name()}.journal"
    pub._write_journal(journal, [(tmp_path / "a" / "x", targets["onnx"])], [targets["data"]])
    data = json.loads(journal.read_text())
    assert data == {"files": [["x", "m.onnx"]], "remove": ["m.onnx.data"]}
