"""Tiny ONNX models for the overlay tests: a 60-node chain, right and with a planted weight error."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import onnx
import pytest

from tests.localize.conftest import exports  # noqa: F401  (the shared PyTorch export, made once)
from tests.localize.onnx_chain import chain

BAD_WEIGHT = "W5"  # scaled by 1.5: node mm5 is the first to diverge


@pytest.fixture(scope="session")
def chain_models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("overlay-chain")
    paths = {"good": folder / "good.onnx", "bad": folder / "bad.onnx", "same": folder / "same.onnx"}
    onnx.save(chain(), paths["good"])
    onnx.save(chain(), paths["same"])
    onnx.save(chain(scale={BAD_WEIGHT: 1.5}), paths["bad"])
    return paths


@pytest.fixture(scope="session")
def where_report(chain_models, tmp_path_factory) -> Path:
    """``onnxbridge debug good.onnx bad.onnx --report where.json``: a report with overlays beside it."""
    from onnxbridge.cli import main

    report = tmp_path_factory.mktemp("overlay-where") / "where.json"
    assert main(["debug", str(chain_models["good"]), str(chain_models["bad"]), "--report", str(report)]) == 1
    return report


@dataclass(frozen=True)
class Served:
    url: str
    port: int
    output: list[str]


@contextlib.contextmanager
def serve_view(model: Path, report: Path, start_s: float = 60.0):
    """``onnxbridge view MODEL --report REPORT --no-browser`` in a child process: yields its URL once the
    server answers; always stopped (Ctrl+C, then kill) on the way out."""
    import signal
    import subprocess
    import sys
    import threading
    import urllib.request

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "onnxbridge", "view", str(model), "--report", str(report), "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=root,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        deadline = time.monotonic() + start_s
        url = None
        while time.monotonic() < deadline and proc.poll() is None:
            url = url or next((ln.split(" ", 1)[1].strip() for ln in list(lines) if ln.startswith("viewer: ")), None)
            if url:
                try:
                    with opener.open(f"http://127.0.0.1:{urlparse(url).port}/check_health", timeout=2) as r:
                        if r.read() == b"model_explorer_ok":
                            break
                except OSError:
                    pass
            time.sleep(0.3)
        else:
            raise AssertionError(f"onnxbridge view did not come up (exit {proc.poll()}): {''.join(lines)[-2000:]}")
        yield Served(url, int(urlparse(url).port), lines)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)
        reader.join(timeout=5)
