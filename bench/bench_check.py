"""Wall time of ``onnxbridge check`` on a project of N declared models (default 10).

Builds a temporary project (one small PyTorch MLP per file, random weights), runs
``onnxbridge check --update`` once, then times ``onnxbridge check`` as a fresh process:

1. unchanged (the cache answers: target under 1 s, and no framework, onnx or onnxruntime imported);
2. after one model's source changed in a way that keeps parity (that model is re-checked against its
   source and re-exported, the others stay cached);
3. after one model's source changed so that parity breaks (exit 1, the failing output named).

    .venv/bin/python bench/bench_check.py [--models 10] [--repeat 5] [--jobs 1] [--json OUT.json]

Prints one line per scenario and, with --json, writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

MODEL = """\
import torch
from torch import nn


def build():
    torch.manual_seed({seed})
    return nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 8))
"""

# run in a fresh interpreter: the CLI in-process, then what it imported and how long it took
PROBE = textwrap.dedent("""
    import json, sys, time
    t = time.perf_counter()
    from onnxbridge.cli import main
    t_import = time.perf_counter() - t
    t = time.perf_counter()
    rc = main(["check", "--config", sys.argv[1]] + sys.argv[2:])
    seconds = time.perf_counter() - t
    heavy = sorted(m for m in ("torch", "tensorflow", "keras", "onnxruntime", "onnx", "onnxsim") if m in sys.modules)
    print("PROBE", json.dumps({"rc": rc, "import_s": t_import, "in_process_s": seconds, "imported": heavy}))
""")


def make_project(root: Path, n: int) -> Path:
    (root / "models").mkdir(parents=True)
    entries = []
    for i in range(n):
        (root / "models" / f"m{i}.py").write_text(MODEL.format(seed=i))
        entries.append(
            f'[[models]]\nname = "m{i}"\nsource = "models/m{i}.py:build"\nonnx = "artifacts/m{i}.onnx"\n'
            f'inputs = ["x:batch,16"]\nprovider = "cpu"\n'
        )
    (root / "onnxbridge.toml").write_text("\n".join(entries))
    return root / "onnxbridge.toml"


def run_probe(manifest: Path, *extra: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(manifest), *extra],
        capture_output=True,
        text=True,
        cwd=manifest.parent,
        env=env,
        timeout=1800,
    )
    wall = time.perf_counter() - t0
    if "PROBE" not in proc.stdout:
        raise SystemExit(f"check crashed:\n{proc.stdout}\n{proc.stderr}")
    out = json.loads(proc.stdout.rsplit("PROBE", 1)[1])
    out["wall_s"] = wall
    out["lines"] = [line for line in proc.stdout.splitlines() if not line.startswith("PROBE")]
    return out


def scenario(name: str, runs: list[dict]) -> dict:
    walls = [r["wall_s"] for r in runs]
    inproc = [r["in_process_s"] for r in runs]
    last = runs[-1]
    return {
        "scenario": name,
        "runs": len(runs),
        "exit_code": last["rc"],
        "wall_s_median": statistics.median(walls),
        "wall_s_min": min(walls),
        "in_process_s_median": statistics.median(inproc),
        "cli_import_s_median": statistics.median(r["import_s"] for r in runs),
        "imported": last["imported"],
        "summary": last["lines"][-1] if last["lines"] else "",
        "changed_model_line": next((ln for ln in last["lines"] if ln.startswith(("✓ m3", "✗ m3"))), None),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=5, help="runs of the unchanged scenario (median reported)")
    ap.add_argument("--jobs", type=int, default=1, help="--jobs for the --update that sets the project up")
    ap.add_argument("--json", dest="json_out", default=None, help="write the figures to this JSON file")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="onnxbridge-bench-check-") as tmp:
        manifest = make_project(Path(tmp) / "project", args.models)
        t0 = time.perf_counter()
        setup = run_probe(manifest, "--update", "--jobs", str(args.jobs))
        setup_s = time.perf_counter() - t0
        if setup["rc"] != 0:
            raise SystemExit("--update failed:\n" + "\n".join(setup["lines"]))
        run_probe(manifest)  # settle the cache (files written within the last 2 s are hashed once more)

        results = [scenario("unchanged", [run_probe(manifest) for _ in range(args.repeat)])]
        src = manifest.parent / "models" / "m3.py"
        src.write_text(src.read_text().replace("nn.GELU()", "nn.GELU(approximate='none')"))
        results.append(scenario("one source changed, parity kept", [run_probe(manifest)]))
        results.append(scenario("unchanged again", [run_probe(manifest) for _ in range(args.repeat)]))
        src.write_text(src.read_text().replace("nn.GELU(approximate='none')", "nn.ReLU()"))
        results.append(scenario("one source changed, parity broken", [run_probe(manifest)]))

    print(
        f"onnxbridge check on {args.models} declared models ({platform.python_version()}, "
        f"{os.cpu_count()} CPUs); setup --update --jobs {args.jobs}: {setup_s:.1f} s"
    )
    for r in results:
        print(
            f"  {r['scenario']:<36} wall {r['wall_s_median']:.3f} s (process start to exit, median of "
            f"{r['runs']}; importing the CLI {r['cli_import_s_median']:.3f} s, the check itself "
            f"{r['in_process_s_median']:.3f} s), exit {r['exit_code']}, "
            f"imported: {', '.join(r['imported']) or 'no framework / onnx / onnxruntime'}"
        )
        if r["changed_model_line"]:
            print(f"      {r['changed_model_line']}")
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(
                {
                    "models": args.models,
                    "setup_update_s": setup_s,
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "results": results,
                },
                indent=2,
            )
            + "\n"
        )
    ok = results[0]["exit_code"] == 0 and not results[0]["imported"] and results[-1]["exit_code"] == 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
