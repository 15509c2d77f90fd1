"""``onnxbridge check`` on a real project: cache hits, replays, source changes, updates, bad files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from onnxbridge.gate import check


def test_unchanged_project_is_checked_fast_without_importing_any_framework(project):
    code = textwrap.dedent("""
        import json, sys, time
        from onnxbridge.cli import main  # Python, click and numpy start-up are not the check's cost
        t = time.perf_counter()
        rc = main(["check", "--config", sys.argv[1]])
        seconds = time.perf_counter() - t
        heavy = sorted(m for m in ("torch", "tensorflow", "keras", "onnxruntime", "onnx", "onnxsim", "onnxscript")
                       if m in sys.modules)
        print("RESULT", json.dumps({"rc": rc, "seconds": seconds, "heavy": heavy}))
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code, str(project / "onnxbridge.toml")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=project,
    )
    result = json.loads(proc.stdout.rsplit("RESULT", 1)[1])
    assert result["rc"] == 0, proc.stdout + proc.stderr
    assert result["heavy"] == []
    assert result["seconds"] < 1.0, result
    lines = proc.stdout.splitlines()
    assert any(line.startswith("· net") and "unchanged" in line for line in lines), proc.stdout
    assert any(line.startswith("· other") and "unchanged" in line for line in lines), proc.stdout
    assert "2 model(s): 2 unchanged" in proc.stdout


def _edit_weight(path, delta: float) -> None:
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    init = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    arr = numpy_helper.to_array(init) + np.float32(delta)
    init.CopyFrom(numpy_helper.from_array(arr.astype(np.float32), init.name))
    model.producer_name = "edited by hand"
    onnx.save(model, str(path))


def test_a_changed_onnx_file_is_replayed_on_its_fixtures_only(project):
    _edit_weight(project / "artifacts" / "net.onnx", 0.0)  # same numbers, new bytes
    report = check(project / "onnxbridge.toml")
    net, other = report.results
    assert (net.status, net.checks, net.reasons) == ("passed", ("replay",), ("ONNX file changed",))
    assert net.worst is not None and net.worst.max_abs < 1e-5
    assert other.status == "unchanged" and report.exit_code == 0
    assert check(project / "onnxbridge.toml").results[0].status == "unchanged"

    _edit_weight(project / "artifacts" / "net.onnx", 0.25)  # a hand edit that breaks parity
    report = check(project / "onnxbridge.toml")
    net = report.results[0]
    assert net.status == "failed" and net.checks == ("replay",) and report.exit_code == 1
    assert net.worst.check == "replay" and net.worst.output and net.worst.max_abs > 0.1
    assert "no longer reproduces its golden outputs" in net.message and "--update" in net.hint


def test_parallel_jobs_give_the_same_verdicts(project):
    for name in ("net", "other"):
        _edit_weight(project / "artifacts" / f"{name}.onnx", 0.0)
    _edit_weight(project / "artifacts" / "other.onnx", 1.0)
    report = check(project / "onnxbridge.toml", jobs=2)
    assert [(r.name, r.status, r.checks) for r in report.results] == [
        ("net", "passed", ("replay",)),
        ("other", "failed", ("replay",)),
    ]
    assert report.jobs == 2 and report.exit_code == 1


def test_a_refactor_that_keeps_parity_passes_with_a_reexport(project):
    src = project / "models.py"
    src.write_text(src.read_text().replace("Scale(2.0)", "Scale(4.0 / 2)") + "\n# refactored\n")
    report = check(project / "onnxbridge.toml", models=["net"])
    (net,) = report.results
    assert net.status == "passed", net.message
    assert net.checks == ("replay", "source", "export")
    assert net.reasons == ("source changed: models.py",)
    assert net.framework == "pytorch" and net.worst.max_abs < 1e-4
    assert net.validations["source"].passed and len(net.validations["source"].cases) >= 3
    assert check(project / "onnxbridge.toml", models=["net"]).results[0].status == "unchanged"


def test_a_helper_change_that_breaks_parity_is_refused_until_updated(project, run_cli):
    layers = project / "layers.py"
    layers.write_text(layers.read_text().replace("return x * self.k", "return x * self.k + 0.01"))
    res = run_cli("check", "--config", project / "onnxbridge.toml")
    assert res.code == 1, res.out + res.err
    lines = res.out.splitlines()
    net_line = next(line for line in lines if line.startswith("✗ net"))
    assert "FAILED" in net_line and "no longer matches its source" in net_line and "max_abs 0.01" in net_line
    assert "source changed: layers.py" in net_line
    assert any(line.startswith("✓ other") and "passed" in line for line in lines), res.out
    assert "onnxbridge.toml:2" in res.out and "--update" in res.out

    # a failure is never cached: the next run fails again, and says so in JSON for CI annotations
    res = run_cli("check", "--config", project / "onnxbridge.toml", "--json")
    data = json.loads(res.out)
    assert res.code == 1 and data["exit_code"] == 1 and data["counts"]["failed"] == 1
    assert data["counts"]["unchanged"] == 1  # other passed in the previous run
    (ann,) = data["annotations"]
    assert ann["line"] == 2 and ann["file"].endswith("onnxbridge.toml") and "net" in ann["title"]
    failed = data["models"][0]
    assert failed["worst"]["check"] == "source" and failed["worst"]["max_abs"] == pytest.approx(0.01, rel=1e-3)

    report = check(project / "onnxbridge.toml", update=True, models=["net"])
    assert report.results[0].status == "updated" and report.exit_code == 0
    after = check(project / "onnxbridge.toml")
    assert [r.status for r in after.results] == ["unchanged", "unchanged"]


def test_a_new_framework_version_triggers_a_full_check(project):
    cache_file = project / ".onnxbridge" / "cache.json"
    data = json.loads(cache_file.read_text())
    data["models"]["other"]["fingerprint"]["export_versions"]["torch"] = "2.0.0"
    cache_file.write_text(json.dumps(data))
    report = check(project / "onnxbridge.toml")
    net, other = report.results
    assert net.status == "unchanged"
    assert other.status == "passed" and other.checks == ("replay", "source", "export")
    assert any(r.startswith("torch 2.0.0 -> ") for r in other.reasons), other.reasons


def test_deleted_onnx_file_and_missing_fixtures_exit_2_with_the_fix(project, run_cli):
    (project / "artifacts" / "net.onnx").unlink()
    res = run_cli("check", "--config", project / "onnxbridge.toml")
    assert res.code == 2
    assert "ONNX file artifacts/net.onnx of model 'net' does not exist" in res.out
    assert "onnxbridge check --update" in res.out and "git checkout -- artifacts/net.onnx" in res.out
    assert "· other" in res.out  # the other model is still checked

    (project / "artifacts" / "other.npz").unlink()
    res = run_cli("check", "--config", project / "onnxbridge.toml", "--model", "other", "--json")
    data = json.loads(res.out)
    assert res.code == 2 and data["models"][0]["status"] == "error"
    assert "fixtures file artifacts/other.npz" in data["models"][0]["message"]
    assert "onnxbridge check --update" in data["annotations"][0]["message"]


def test_a_corrupt_onnx_file_is_a_bad_input(project):
    (project / "artifacts" / "net.onnx").write_bytes(b"not an onnx model at all")
    report = check(project / "onnxbridge.toml", models=["net"])
    (net,) = report.results
    assert net.status == "error" and report.exit_code == 2
    assert "artifacts/net.onnx" in net.message and "not a readable ONNX model" in net.message
    written = json.loads(report.write(project / "check.json").read_text())
    assert written["models"][0]["status"] == "error" and written["exit_code"] == 2
    with pytest.raises(Exception, match="write it as .json"):
        report.write(project / "check.md")


def test_public_api_and_help(run_cli):
    import onnxbridge

    assert onnxbridge.check is check
    res = run_cli("check", "--help")
    assert res.code == 0 and "--update" in res.out and "--jobs" in res.out and "--json" in res.out
    assert "check" in run_cli("--help").out


def test_pyproject_manifest_with_a_module_source_found_from_a_subfolder(tmp_path, run_cli, monkeypatch):
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "mypkg").mkdir()
    (root / "mypkg" / "__init__.py").write_text("")
    nets = root / "mypkg" / "nets.py"
    nets.write_text(
        "import torch\n\n\ndef small():\n    torch.manual_seed(3)\n"
        "    return torch.nn.Linear(2, 2), (torch.ones(1, 2),)\n"
    )
    (root / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.onnxbridge]\nprovider = "cpu"\n\n[[tool.onnxbridge.models]]\n'
        'name = "small"\nsource = "mypkg.nets:small"\nonnx = "onnx/small.onnx"\nreexport = false\n'
    )
    (root / "docs").mkdir()
    monkeypatch.chdir(root / "docs")
    res = run_cli("check", "--update")
    assert res.code == 0 and "✓ small" in res.out and "updated" in res.out, res.out + res.err
    assert (root / "onnx" / "small.onnx").is_file() and (root / "onnx" / "small.npz").is_file()
    res = run_cli("check")
    assert res.code == 0 and "· small" in res.out and "unchanged" in res.out

    nets.write_text(nets.read_text().replace("manual_seed(3)", "manual_seed(4)"))  # new weights
    res = run_cli("check")
    assert res.code == 1, res.out
    assert "source changed: mypkg/nets.py" in res.out and "no longer matches its source" in res.out
    assert "pyproject.toml:7" in res.out


def test_check_json_matches_its_schema_and_names_typed_locations(project, run_cli):
    from tests.test_report_schema import check as check_schema

    res = run_cli("check", "--config", project / "onnxbridge.toml", "--force", "--json")
    assert res.code == 0, res.err
    data = check_schema("check.schema.json", json.loads(res.out))
    net = data["models"][0]
    assert net["line"] == 2 and net["file"].endswith("onnxbridge.toml") and net["where"] == f"{net['file']}:2"
    assert set(net["validations"]) == {"replay", "source", "export"}
    assert net["validations"]["replay"]["cases"][0]["kind"] == "fixture"


def test_a_gate_models_fixtures_replay_with_validate(project, run_cli):
    """One fixtures format: the gate's file (inputs and outputs together) replays with `validate --expected`."""
    import onnx
    from onnx import numpy_helper

    onnx_path, golden = project / "artifacts" / "net.onnx", project / "artifacts" / "net.npz"
    assert run_cli("validate", onnx_path, "--expected", golden).code == 0
    assert run_cli("validate", onnx_path, "--inputs", golden, "--expected", golden).code == 0
    m = onnx.load(str(onnx_path))
    init = m.graph.initializer[0]
    arr = numpy_helper.to_array(init).copy()
    arr.flat[0] += 0.5
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    onnx.save(m, str(onnx_path))
    res = run_cli("validate", onnx_path, "--expected", golden)
    assert res.code == 1 and "out of tolerance" in res.out
    gate = check(project / "onnxbridge.toml", models=["net"])
    assert gate.results[0].status == "failed" and gate.exit_code == 1


HALF_PY = '''\
import torch
from torch import nn


class Half(nn.Module):
    """float32 in and out, float16 inside: a sum of squares in float16 less the same in float32, so the
    output is float16's rounding error (~1e-3): far above float32's tolerances, within float16's."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(64, 64)

    def forward(self, x):
        lin = self.lin(x) / 4
        h = lin.half()
        return (h * h).sum(-1, keepdim=True).float() - (lin * lin).sum(-1, keepdim=True)


def net():
    return Half().eval()
'''


def test_a_model_computing_in_float16_passes_check_after_update(tmp_path):
    """convert and --update judge outputs computed in float16 at float16's tolerances; the replay must too
    (it judged them at float32's and failed the file --update had just accepted)."""
    (tmp_path / "half.py").write_text(HALF_PY)
    (tmp_path / "onnxbridge.toml").write_text(
        textwrap.dedent("""\
        [[models]]
        name = "half"
        source = "half.py:net"
        onnx = "artifacts/half.onnx"
        inputs = ["x:batch,64"]
        provider = "cpu"
        """)
    )
    updated = check(tmp_path / "onnxbridge.toml", update=True)
    assert [r.status for r in updated.results] == ["updated"], [r.message for r in updated.results]
    replay = check(tmp_path / "onnxbridge.toml", force=True)
    (result,) = replay.results
    assert result.status == "passed", result.message
    worst = result.worst
    assert worst is not None and worst.max_abs > 1e-4  # float16 rounding shows: above float32's tolerance
    report = result.validations["replay"]
    assert all(t.source == "float16 default" for t in report.tolerances.values()), report.tolerances

    # a wrong file still fails: the float16 tolerances are not a blank cheque
    import onnx

    path = tmp_path / "artifacts" / "half.onnx"
    model = onnx.load(str(path))
    (sub,) = [n for n in model.graph.node if n.op_type == "Sub"]
    sub.op_type = "Add"  # twice the sum of squares instead of float16's rounding error
    onnx.save(model, str(path))
    broken = check(tmp_path / "onnxbridge.toml", force=True)
    assert broken.results[0].status == "failed" and broken.exit_code == 1, broken.results[0].message
