"""End to end with the real ``pre-commit`` tool: the hook from .pre-commit-hooks.yaml guards commits.

A temporary hook repository holds this checkout's .pre-commit-hooks.yaml (so the test uses the hook
definition exactly as shipped, committed or not), and a temporary project installs it with
``pre-commit install``. Everything runs offline: the hook is ``language: system`` and finds the
``onnxbridge`` command of this environment on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow


def git(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    if shutil.which("git") is None or not (BIN / "pre-commit").exists() or not (BIN / "onnxbridge").exists():
        pytest.fail("git, pre-commit and onnxbridge must be installed (bash scripts/setup.sh dev)")
    e = dict(os.environ)
    e.update(
        PATH=f"{BIN}{os.pathsep}{e.get('PATH', '')}",
        PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
        GIT_CONFIG_NOSYSTEM="1",
        HOME=str(tmp_path),  # no user config (signing, hooksPath...) leaks in
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    return e


def test_the_hook_passes_a_parity_keeping_commit_and_refuses_a_breaking_one(exported_project, tmp_path, env):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    shutil.copy(REPO / ".pre-commit-hooks.yaml", hooks / ".pre-commit-hooks.yaml")
    for args in (("init", "-q"), ("add", "-A"), ("commit", "-q", "-m", "hooks")):
        assert git(hooks, *args, env=env).returncode == 0
    rev = git(hooks, "rev-parse", "HEAD", env=env).stdout.strip()

    project = tmp_path / "project"
    shutil.copytree(exported_project, project)
    (project / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {hooks.as_uri()}\n  rev: {rev}\n  hooks:\n  - id: onnxbridge-check\n    verbose: true\n"
    )
    assert git(project, "init", "-q", env=env).returncode == 0
    install = subprocess.run(
        [str(BIN / "pre-commit"), "install"], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    assert install.returncode == 0, install.stdout + install.stderr

    # 1. the model, its ONNX file and fixtures (the cache stays out of git by itself)
    git(project, "add", "-A", env=env)
    assert ".onnxbridge" not in git(project, "status", "--porcelain", env=env).stdout
    first = git(project, "commit", "-m", "add models", env=env)
    out = first.stdout + first.stderr
    assert first.returncode == 0, out
    assert "onnxbridge check (ONNX parity gate)" in out and "Passed" in out and "2 unchanged" in out

    # 2. a refactor that keeps parity: the hook re-checks the source and re-exports, and lets it in
    src = project / "models.py"
    src.write_text(src.read_text().replace("Scale(2.0)", "Scale(1.0 + 1.0)"))
    second = git(project, "commit", "-am", "refactor", env=env)
    out = second.stdout + second.stderr
    assert second.returncode == 0, out
    assert "Passed" in out and "source changed: models.py" in out and "re-export" in out and "2 passed" in out

    # 3. a change that breaks parity: the commit is refused and says which output broke
    src.write_text(src.read_text().replace("nn.Tanh()", "nn.Sigmoid()"))
    third = git(project, "commit", "-am", "swap activation", env=env)
    out = third.stdout + third.stderr
    assert third.returncode != 0, out
    assert "Failed" in out and "✗ net" in out and "no longer matches its source" in out and "max_abs" in out
    assert git(project, "log", "--format=%s", env=env).stdout.splitlines() == ["refactor", "add models"]
    assert git(project, "diff", "--name-only", env=env).stdout.strip() == "models.py"  # the edit is kept
