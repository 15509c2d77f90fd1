"""Run ``onnxbridge`` CLI commands as child processes of a fork server that imported torch, onnx and
onnxruntime once: a real process (killable with SIGKILL, its own memory) that costs only its work."""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from pathlib import Path

PRELOAD = [
    "onnxbridge.cli",
    "onnxbridge.api",
    "onnxbridge.gate",
    "numpy",
    "onnx",
    "onnxruntime",
    "onnx_ir",
    "onnxscript",
    "onnxsim",
    "torch",
    "torch.onnx",
    "torch.export",
]


def _run_cli(args: list[str], cwd: str) -> None:  # pragma: no cover - runs in the fork server's children
    os.chdir(cwd)
    sys.stdout = sys.stderr = open(os.devnull, "w")
    from onnxbridge.cli import main

    os._exit(main(args))


class CliServer:
    def __init__(self) -> None:
        self.ctx = multiprocessing.get_context("forkserver")
        self.ctx.set_forkserver_preload(PRELOAD)
        self.complete(["--version"], Path.cwd())  # the server's imports are paid here, not by a measured run

    def start(self, args: list, cwd: Path):
        proc = self.ctx.Process(target=_run_cli, args=([str(a) for a in args], str(cwd)))
        proc.start()
        return proc

    def complete(self, args: list, cwd: Path, expect: int = 0) -> float:
        """Run to the end; the seconds it took."""
        t0 = time.perf_counter()
        proc = self.start(args, cwd)
        proc.join(300)
        assert proc.exitcode == expect, (args, proc.exitcode)
        return time.perf_counter() - t0

    def kill_during(self, args: list, cwd: Path, delay: float) -> None:
        """Start, and SIGKILL after ``delay`` seconds (no finally, no atexit) unless done by then."""
        proc = self.start(args, cwd)
        proc.join(delay)
        if proc.is_alive():
            proc.kill()
        proc.join(30)
