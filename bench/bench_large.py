"""A model over 2 GB through convert (simplify + validate), check --update and bench: peak memory and time.

Builds a GPT-2-style decoder with random weights (default n_embd 2048, 12 layers, vocabulary 50257:
708 M parameters, 2.83 GB of float32), then runs each command as a fresh process and reads its
peak RSS (``wait4``) and the per-stage ``peak_rss_bytes`` of its JSON report:

    .venv/bin/python bench/bench_large.py                       # the 2.8 GB model (needs ~10 GB free)
    .venv/bin/python bench/bench_large.py --n-embd 512 --layers 2   # a quick look
    .venv/bin/python bench/bench_large.py --compare-simplifiers --n-embd 1024 --skip-pipeline

``--compare-simplifiers`` times onnxsim, onnxslim (when installed) and onnx-ir's memory-mapped
optimizer on the exported model, each in its own process (onnxsim needs ~5x the weights: keep
the model small enough for the machine). Targets: peak RSS <= 2.5x the weight size, simplify
<= 30 s. Prints one line per stage and writes JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

MODEL = '''\
import torch
from transformers import GPT2Config, GPT2LMHeadModel


class Decoder(torch.nn.Module):
    """GPT-2 LM head; logits only."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        config = GPT2Config(n_embd={n_embd}, n_layer={layers}, n_head={heads}, n_positions=256, use_cache=False,
                            attn_implementation="eager")
        self.lm = GPT2LMHeadModel(config).eval()

    def forward(self, input_ids):
        return self.lm(input_ids=input_ids).logits


def decoder():
    return Decoder().eval(), (torch.randint(0, 50257, (2, 16)),)
'''

SIMPLIFIERS = {
    "onnxsim": "import onnx, onnxsim; m = onnx.load(SRC); onnxsim.simplify(m, check_n=0)",
    "onnxslim": "import onnxslim; onnxslim.slim(SRC, DST)",
    "onnx-ir": "from onnxbridge.transforms.simplify import simplify_file; simplify_file(SRC, DST, None)",
}


def run(cmd: list[str], cwd: Path, env: dict | None = None) -> tuple[int, float, int, str]:
    """(exit code, seconds, peak RSS bytes of the process tree, stdout)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.PIPE, text=True, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - t0
        err = proc.stderr.read() if proc.stderr else ""
        out.seek(0)
        text = out.read()
    if proc.returncode not in (0, 1):
        print(err[-3000:], file=sys.stderr)
    return proc.returncode, seconds, usage.ru_maxrss * 1024, text


def onnxbridge(*args: str) -> list[str]:
    return [sys.executable, "-c", "from onnxbridge.cli import run; run()", *args]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-embd", type=int, default=2048)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=16)
    ap.add_argument("--compare-simplifiers", action="store_true")
    ap.add_argument("--skip-pipeline", action="store_true", help="only the simplifier comparison")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    work = a.workdir or Path(tempfile.mkdtemp(prefix="onnxbridge-large-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "big.py").write_text(MODEL.format(n_embd=a.n_embd, layers=a.layers, heads=a.heads))
    out = work / "out" / "model.onnx"
    out.parent.mkdir(exist_ok=True)
    figures: dict = {
        "n_embd": a.n_embd,
        "layers": a.layers,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "stages": {},
    }
    # the export runs once either way; --no-validate/--no-simplify when only comparing simplifiers
    convert = [
        "convert",
        "big.py:decoder",
        "-o",
        str(out),
        "--input",
        "input_ids:batch,seq:int64",
        "--provider",
        "cpu",
        "--json",
        "--external-data",
    ]
    if a.skip_pipeline:
        convert += ["--no-simplify", "--no-validate"]
    code, seconds, peak, text = run(onnxbridge(*convert), work)
    weights = sum(p.stat().st_size for p in out.parent.glob("model.onnx*"))
    figures["weight_bytes"] = weights
    print(f"weights: {weights / 1e9:.2f} GB ({out.parent})")
    _stage(figures, "convert", code, seconds, peak, weights, json.loads(text) if text.strip() else {})
    if not a.skip_pipeline:
        _pipeline(work, out, weights, figures)
    if a.compare_simplifiers:
        _compare(work, out, weights, figures)
    if a.json:
        a.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {a.json}")
    return 0


def _stage(figures: dict, name: str, code: int, seconds: float, peak: int, weights: int, report: dict) -> None:
    stages = report.get("peak_rss_bytes", {})
    timings = report.get("timings", {})
    figures["stages"][name] = {
        "exit_code": code,
        "seconds": seconds,
        "peak_rss_bytes": peak,
        "peak_rss_ratio": peak / weights,
        "stage_peak_rss_bytes": stages,
        "timings": timings,
    }
    inner = ", ".join(f"{k} {v / 1e9:.2f} GB ({v / weights:.2f}x)" for k, v in stages.items())
    times = ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
    print(
        f"{name:<16} exit {code}  {seconds:6.1f} s  peak RSS {peak / 1e9:.2f} GB = {peak / weights:.2f}x weights"
        + (f"\n{'':<18}per stage: {inner}" if inner else "")
        + (f"\n{'':<18}times: {times}" if times else "")
    )


def _pipeline(work: Path, out: Path, weights: int, figures: dict) -> None:
    project = work / "proj"
    project.mkdir(exist_ok=True)
    (project / "big.py").write_text((work / "big.py").read_text())
    (project / "onnxbridge.toml").write_text(
        textwrap.dedent("""
        [[models]]
        name = "decoder"
        source = "big.py:decoder"
        onnx = "artifacts/decoder.onnx"
        inputs = ["input_ids:batch,seq:int64"]
        provider = "cpu"
        """)
    )
    code, seconds, peak, text = run(onnxbridge("check", "--update", "--json"), project)
    _stage(figures, "check --update", code, seconds, peak, weights, {})
    code, seconds, peak, text = run(onnxbridge("check", "--json"), project)
    _stage(figures, "check (cached)", code, seconds, peak, weights, {})
    code, seconds, peak, text = run(onnxbridge("check", "--force", "--json"), project)
    _stage(figures, "check --force", code, seconds, peak, weights, {})
    code, seconds, peak, text = run(onnxbridge("bench", str(out), "--runs", "10", "--warmup", "2", "--json"), work)
    _stage(figures, "bench", code, seconds, peak, weights, json.loads(text) if text.strip() else {})
    code, seconds, peak, text = run(onnxbridge("inspect", str(out), "--json"), work)
    _stage(figures, "inspect", code, seconds, peak, weights, {})


def _compare(work: Path, out: Path, weights: int, figures: dict) -> None:
    figures["simplifiers"] = {}
    for name, code_text in SIMPLIFIERS.items():
        dst = work / f"simplified-{name}" / "model.onnx"
        dst.parent.mkdir(exist_ok=True)
        script = code_text.replace("SRC", repr(str(out))).replace("DST", repr(str(dst)))
        code, seconds, peak, _ = run([sys.executable, "-c", script], work)
        figures["simplifiers"][name] = {
            "exit_code": code,
            "seconds": seconds,
            "peak_rss_bytes": peak,
            "peak_rss_ratio": peak / weights,
        }
        print(
            f"simplifier {name:<9} exit {code}  {seconds:6.1f} s  peak RSS {peak / 1e9:.2f} GB "
            f"= {peak / weights:.2f}x weights"
        )


if __name__ == "__main__":
    sys.exit(main())
