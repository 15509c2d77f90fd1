"""The executor seam without a cluster: options, resource requests, the pair write, and Ray kept lazy.

The Ray runs themselves are in ``test_ray.py`` (one local cluster for that module).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from onnxbridge.errors import UsageError
from onnxbridge.gate import check, outputs
from onnxbridge.gate.check import version_drift
from onnxbridge.gate.executors.ray_tasks import resources_of
from onnxbridge.gate.executors.registry import EXECUTORS
from onnxbridge.gate.manifest import load_manifest
from onnxbridge.gate.runner import Task
from onnxbridge.options import ExecutorOptions


def test_executor_options_parse_and_refuse_what_they_cannot_run():
    assert ExecutorOptions.parse(None) == ExecutorOptions("local")
    ray = ExecutorOptions.parse("ray:ray://head:10001", retries=1)
    assert (ray.kind, ray.address, ray.retries, ray.shipped, str(ray)) == (
        "ray",
        "ray://head:10001",
        1,
        True,
        "ray:ray://head:10001",
    )
    assert (
        ExecutorOptions.parse("RAY").shipped is False
        and str(ExecutorOptions.parse("ray:127.0.0.1:6379")) == "ray:127.0.0.1:6379"
    )
    for spec, words in (
        ("dask", "use one of local, ray"),
        ("local:x", "only ray takes an address"),
        ("ray:", "no address"),
        ("ray: ", "no address"),
    ):
        with pytest.raises(UsageError, match=words):
            EXECUTORS.resolve(ExecutorOptions.parse(spec))  # the name and what it takes: the registry's
    assert EXECUTORS.resolve(ExecutorOptions.parse("ray:auto")).name == "ray"
    with pytest.raises(UsageError, match="--jobs -1"):
        ExecutorOptions(jobs=-1)
    with pytest.raises(UsageError, match="between 0 and 10"):
        ExecutorOptions("ray", retries=11)


def test_cli_rejects_a_bad_executor_before_any_work(tmp_path, run_cli):
    (tmp_path / "m.py").write_text("net = None\n")
    (tmp_path / "onnxbridge.toml").write_text('[[models]]\nname = "n"\nsource = "m.py:net"\nonnx = "n.onnx"\n')
    res = run_cli("check", "--config", tmp_path / "onnxbridge.toml", "--executor", "dask")
    assert res.code == 2 and "unknown --executor 'dask'" in res.err and "local, ray" in res.err
    assert not (tmp_path / ".onnxbridge").exists()
    help_text = run_cli("check", "--help").out
    assert "--executor" in help_text and "--retries" in help_text


def test_without_ray_installed_the_ray_executor_is_a_usage_error(tmp_path, run_cli, monkeypatch):
    (tmp_path / "m.py").write_text("net = None\n")
    (tmp_path / "onnxbridge.toml").write_text('[[models]]\nname = "n"\nsource = "m.py:net"\nonnx = "n.onnx"\n')
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    res = run_cli("check", "--config", tmp_path / "onnxbridge.toml", "--executor", "ray", "--update")
    assert res.code == 2 and "needs Ray" in res.err and "onnxbridge[ray]" in res.err


def test_a_cluster_address_nothing_answers_at_is_a_quick_usage_error(tmp_path, run_cli):
    import socket

    (tmp_path / "m.py").write_text("net = None\n")
    (tmp_path / "onnxbridge.toml").write_text('[[models]]\nname = "n"\nsource = "m.py:net"\nonnx = "n.onnx"\n')
    with socket.socket() as s:  # a loopback port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pytest.importorskip("ray")
    res = run_cli("check", "--config", tmp_path / "onnxbridge.toml", "--update", "--executor", f"ray:127.0.0.1:{port}")
    assert res.code == 2 and f"nothing answers at 127.0.0.1:{port}" in res.err and "ray start --head" in res.err


def test_manifest_resources_are_checked_and_do_not_change_the_cache_key(tmp_path):
    (tmp_path / "m.py").write_text("net = None\n")
    base = '[[models]]\nname = "n"\nsource = "m.py:net"\nonnx = "n.onnx"\nprovider = "cuda"\n'
    (tmp_path / "onnxbridge.toml").write_text(base)
    plain = load_manifest(tmp_path / "onnxbridge.toml").models[0]
    (tmp_path / "onnxbridge.toml").write_text("cpus = 2\n" + base + "memory_gb = 1.5\n")
    sized = load_manifest(tmp_path / "onnxbridge.toml").models[0]
    assert (plain.cpus, plain.memory_gb, sized.cpus, sized.memory_gb) == (1.0, None, 2.0, 1.5)
    assert sized.digest == plain.digest  # where it runs is not what it checks
    task = Task(sized, str(tmp_path), None, "m.py:net", "update")
    assert resources_of(task) == {"num_cpus": 2.0, "memory": int(1.5 * 2**30), "num_gpus": 1}
    (tmp_path / "onnxbridge.toml").write_text(base + "cpus = 0\n")
    with pytest.raises(Exception, match=r"onnxbridge.toml:\d+: model 'n': cpus must be > 0"):
        load_manifest(tmp_path / "onnxbridge.toml")


def test_staged_files_from_another_machine_are_published_here_together(tmp_path):
    """A shipped worker packs its scratch folder into bytes; the submitter unpacks and publishes them."""
    from onnxbridge.gate.manifest import ModelEntry
    from onnxbridge.publish import scratch_dir

    state = tmp_path / ".onnxbridge"
    entry = ModelEntry(name="m", source="m.py:net", onnx="artifacts/m.onnx", fixtures="artifacts/m.npz")
    folder = scratch_dir(state)
    (folder / "m.onnx").write_bytes(b"onnx bytes")
    (folder / "fixtures.staged.npz").write_bytes(b"npz bytes")
    staged = outputs.StagedFiles(str(folder), "m.onnx", "fixtures.staged.npz").packed()
    assert staged.folder is None and not folder.exists() and dict(staged.blobs)["m.onnx"] == b"onnx bytes"
    outputs.publish_update(entry, tmp_path, state, staged)
    assert (tmp_path / "artifacts" / "m.onnx").read_bytes() == b"onnx bytes"
    assert (tmp_path / "artifacts" / "m.npz").read_bytes() == b"npz bytes"
    assert sorted(p.name for p in (tmp_path / "artifacts").iterdir()) == ["m.npz", "m.onnx"]
    assert [p.name for p in state.iterdir()] == []  # the scratch folder it was unpacked into is gone
    (tmp_path / "artifacts").rename(tmp_path / "kept")
    (tmp_path / "artifacts").write_text("a file where the folder was")
    with pytest.raises(OSError):
        outputs.publish_update(entry, tmp_path, state, staged)
    assert [p.name for p in state.iterdir()] == []


def test_a_shipped_worker_sends_update_files_back_as_bytes(project, tmp_path, monkeypatch):
    """The body of a Ray task run from a copy of the project: its files come back as bytes, its scratch
    folder is gone, and publishing them here writes the model (no cluster needed to check that)."""
    import shutil

    from onnxbridge.gate.executors.ray_tasks import run_remote
    from onnxbridge.gate.manifest import load_manifest as load
    from onnxbridge.parity.fixtures import read_fixtures

    manifest = load(project / "onnxbridge.toml")
    entry = manifest.models[1]  # other
    task = Task(entry, str(manifest.root), manifest.location(entry), manifest.source_for_load(entry), "update")
    copy = tmp_path / "worker-copy"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".onnxbridge", "artifacts"))
    monkeypatch.chdir(copy)  # Ray's working_dir
    outcome = run_remote(task, True)
    assert outcome.result.status == "updated" and outcome.staged.folder is None
    assert sorted(n for n, _ in outcome.staged.blobs) == ["fixtures.staged.npz", "other.onnx"]
    assert list((copy / ".onnxbridge").iterdir()) == [copy / ".onnxbridge" / ".gitignore"]  # scratch removed
    assert "onnxruntime" in outcome.versions and not (copy / "artifacts").exists()
    outputs.publish_update(entry, project, project / ".onnxbridge", outcome.staged)
    meta = read_fixtures(project / "artifacts" / "other.npz").meta
    import hashlib

    assert meta["onnx_sha256"] == hashlib.sha256((project / "artifacts" / "other.onnx").read_bytes()).hexdigest()


def test_a_pass_made_with_other_versions_is_named(monkeypatch):
    from onnxbridge.gate.cache import package_versions

    here = package_versions(("onnxruntime", "numpy"))
    assert version_drift(here) == []
    assert version_drift({**here, "onnxruntime": "0.0.1"}) == [f"onnxruntime 0.0.1 (here {here['onnxruntime']})"]


def test_an_update_that_cannot_be_written_is_an_error_and_not_recorded(project):
    (project / "artifacts").rename(project / "kept")
    (project / "artifacts").write_text("a file where the folder was")  # even root cannot write into it
    before = json.loads((project / ".onnxbridge" / "cache.json").read_text())["models"]["net"]
    report = check(project / "onnxbridge.toml", update=True, models=["net"])
    (net,) = report.results
    assert net.status == "error" and net.exit_code == 2 and "could not write artifacts/net.onnx" in net.message
    assert json.loads((project / ".onnxbridge" / "cache.json").read_text())["models"]["net"] == before


def test_the_local_executor_and_an_unchanged_ray_run_import_no_ray(project):
    import onnx

    model = onnx.load(str(project / "artifacts" / "other.onnx"))
    model.producer_name = "edited"  # new bytes, same numbers: a replay on ONNX Runtime only
    onnx.save(model, str(project / "artifacts" / "other.onnx"))
    code = textwrap.dedent("""
        import json, sys
        from onnxbridge.cli import main
        first = main(["check", "--config", sys.argv[1], "--jobs", "2"])  # local: replays the edited model
        first_ray = "ray" in sys.modules
        second = main(["check", "--config", sys.argv[1], "--executor", "ray"])  # unchanged: nothing to run
        print("RESULT", json.dumps({"rc": [first, second], "ray": [first_ray, "ray" in sys.modules]}))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(project / "onnxbridge.toml")],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=project,
    )
    result = json.loads(proc.stdout.rsplit("RESULT", 1)[1])
    assert result == {"rc": [0, 0], "ray": [False, False]}, proc.stdout + proc.stderr
    assert "other  passed    replay" in proc.stdout and "2 model(s): 2 unchanged" in proc.stdout
