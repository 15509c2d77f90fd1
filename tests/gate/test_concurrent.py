"""Two ``onnxbridge check`` runs on one repository at once never corrupt the cache or the fixtures."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from onnxbridge.gate.cache import CACHE_PATH, Cache, Fingerprint


def _save_many(root: Path, name: str, rounds: int) -> None:  # pragma: no cover - runs in a forked child
    try:
        for i in range(rounds):
            cache = Cache.load(root)
            cache.record_pass(f"{name}{i}", Fingerprint("e", "o", "f"), [], framework=None, summary=name)
            note = cache.save({}, keep={f"{n}{j}" for n in "ab" for j in range(rounds)})
            assert note is None, note
    except BaseException:
        os._exit(1)
    os._exit(0)


def test_cache_saves_from_two_processes_keep_every_pass(tmp_path):
    """Two writers each record 40 passes, one save per pass, at the same time: the cache is
    valid JSON at every read and ends with all 80 (a lost update would drop some)."""
    rounds = 40
    pids = []
    for name in "ab":
        pid = os.fork()
        if pid == 0:  # pragma: no cover
            _save_many(tmp_path, name, rounds)
        pids.append(pid)
    path = tmp_path / CACHE_PATH
    running, codes = set(pids), []
    while running:
        for pid in list(running):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                running.discard(pid)
                codes.append(os.waitstatus_to_exitcode(status))
        if path.exists():
            json.loads(path.read_text())  # atomic: never a half-written file
        time.sleep(0.001)
    assert codes == [0, 0]
    data = json.loads(path.read_text())
    assert sorted(data["models"]) == sorted(f"{n}{i}" for n in "ab" for i in range(rounds))


def test_a_save_keeps_what_another_run_recorded_meanwhile(tmp_path):
    first, second = Cache.load(tmp_path), Cache.load(tmp_path)
    first.record_pass("net", Fingerprint("e", "o", "f"), ["m.onnx"], framework="pytorch", summary="one")
    second.record_pass("other", Fingerprint("e", "o", "f"), ["o.onnx"], framework="pytorch", summary="two")
    assert first.save({"m.onnx": [1, 2, "a"]}, keep={"net", "other"}) is None
    assert second.save({"o.onnx": [1, 2, "b"]}, keep={"net", "other"}) is None
    data = json.loads((tmp_path / CACHE_PATH).read_text())
    assert sorted(data["models"]) == ["net", "other"] and sorted(data["files"]) == ["m.onnx", "o.onnx"]


@pytest.mark.slow
def test_check_and_check_update_at_once(project, cli_server):
    """A CI matrix: `check --force` and `check --update` start together on one repository (two real
    processes). Both finish, the cache is valid and the ONNX file still replays its fixtures afterwards."""
    from onnxbridge.gate import check

    (project / CACHE_PATH).unlink()
    procs = [cli_server.start(["check", "--model", "net", flag], project) for flag in ("--force", "--update")]
    for proc in procs:
        proc.join(300)
    assert [p.exitcode for p in procs] == [0, 0]
    data = json.loads((project / CACHE_PATH).read_text())
    assert "net" in data["models"]
    report = check(project / "onnxbridge.toml", models=["net"])
    assert report.exit_code == 0, [r.message for r in report.results]
    assert not list(project.rglob(".onnxbridge-tmp-*"))
