"""Two ``onnxbridge check`` runs on one repository at once never corrupt the cache or the fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    while any(os.waitpid(p, os.WNOHANG) == (0, 0) for p in pids):
        if path.exists():
            json.loads(path.read_text())  # atomic: never a half-written file
        time.sleep(0.001)
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
def test_check_and_check_update_at_once(project):
    """A CI matrix: `check --force` and `check --update` start together on one repository. Both
    finish, the cache is valid and the ONNX files still replay their fixtures afterwards."""
    from onnxbridge.gate import check

    (project / CACHE_PATH).unlink()
    cmd = [sys.executable, "-c", "from onnxbridge.cli import run; run()", "check", "--json"]
    procs = [subprocess.Popen(cmd + extra, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for extra in (["--force", "--model", "net"], ["--update", "--model", "net"])]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    statuses = [{m["name"]: m["status"] for m in json.loads(o[0])["models"]} for o in outs]
    assert statuses == [{"net": "passed"}, {"net": "updated"}]
    json.loads((project / CACHE_PATH).read_text())
    report = check(project / "onnxbridge.toml")
    assert report.exit_code == 0, [r.message for r in report.results]
    assert not list(project.rglob(".onnxbridge-tmp-*"))
