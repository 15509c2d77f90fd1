"""Wall time of ``onnxbridge check --force`` on N tiny models: ``--executor local --jobs J`` vs ``--executor ray``.

Builds one project of max(N) declared models (small PyTorch MLPs and convolutions, every fourth one a
Keras MLP; random weights), writes their ONNX files and fixtures once with ``check --update``, then
for each N runs, as fresh processes and interleaved, ``check --force`` over the first N models
(replay, check against the source and re-export: the full re-validation a zoo pays on an upgrade) with

- ``--executor local --jobs J`` (J worker processes, spawned for the run), and
- ``--executor ray --jobs J`` (a local Ray instance with J CPUs, started for the run),

and prints the wall times and their ratio (Ray's overhead on one machine), one run each. A straight
line through the points (wall = fixed + per_model * N) separates each executor's start-up cost from
its cost per model, the figures a projection to a larger zoo on a cluster starts from.

    .venv/bin/python bench/bench_executors.py [--sizes 8,16,32] [--jobs 2] [--json bench/results/executors.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TORCH = """\
import torch
from torch import nn


def mlp(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 8))


def conv(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
"""

KERAS = """\
import keras


def mlp(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((16,), name="x"), keras.layers.Dense(32, activation="tanh"),
                             keras.layers.Dense(8)])
"""


def make_project(root: Path, n: int) -> list[str]:
    """``n`` models: m0.. (every 4th Keras, every 3rd of the rest a convolution); returns their names."""
    (root / "zoo").mkdir(parents=True)
    (root / "zoo" / "tnets.py").write_text(
        TORCH
        + "".join(
            f"\n\ndef m{i}():\n    return {'conv' if i % 3 == 1 else 'mlp'}({i})\n" for i in range(n) if i % 4 != 3
        )
    )
    (root / "zoo" / "knets.py").write_text(
        KERAS + "".join(f"\n\ndef m{i}():\n    return mlp({i})\n" for i in range(n) if i % 4 == 3)
    )
    entries = []
    for i in range(n):
        keras_model = i % 4 == 3
        spec = "x:batch,16" if keras_model or i % 3 != 1 else "x:batch,3,16,16"
        entries.append(
            f'[[models]]\nname = "m{i}"\nsource = "zoo/{"knets" if keras_model else "tnets"}.py:m{i}"\n'
            f'onnx = "artifacts/m{i}.onnx"\n' + ("" if keras_model else f'inputs = ["{spec}"]\n')
        )
    (root / "onnxbridge.toml").write_text('provider = "cpu"\n\n' + "\n".join(entries))
    return [f"m{i}" for i in range(n)]


def run_check(root: Path, *args: str) -> dict:
    """``onnxbridge check ARGS --json`` in a fresh process: wall time, exit code, per-model seconds."""
    exe = Path(sys.executable).parent / "onnxbridge"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(exe), "check", "--json", *args], cwd=root, capture_output=True, text=True, env=env, timeout=3600
    )
    wall = time.perf_counter() - t0
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        raise SystemExit(f"check {' '.join(args)} crashed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return {
        "wall_s": wall,
        "exit_code": proc.returncode,
        "counts": report["counts"],
        "model_s_sum": sum(m["seconds"] for m in report["models"]),
    }


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least squares: wall = fixed + per_model * n."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    per = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return my - per * mx, per


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="8,16,32", help="numbers of models, comma-separated")
    ap.add_argument("--jobs", type=int, default=2, help="local worker processes, and the local Ray instance's CPUs")
    ap.add_argument("--json", dest="json_out", default=None, help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    rows = []
    with tempfile.TemporaryDirectory(prefix="onnxbridge-bench-executors-") as tmp:
        root = Path(tmp) / "project"
        names = make_project(root, max(sizes))
        t0 = time.perf_counter()
        setup = run_check(root, "--update", "--jobs", str(args.jobs))
        print(
            f"setup: check --update --jobs {args.jobs} of {len(names)} models: {time.perf_counter() - t0:.1f} s, "
            f"exit {setup['exit_code']}",
            flush=True,
        )
        if setup["exit_code"] != 0:
            raise SystemExit(f"--update failed: {setup['counts']}")
        for n in sizes:
            selection = [a for name in names[:n] for a in ("--model", name)]
            row = {"models": n, "load_before": load_average()}
            for label, executor in (("local", ["--executor", "local"]), ("ray", ["--executor", "ray"])):
                row[label] = run_check(root, "--force", "--jobs", str(args.jobs), *executor, *selection)
                if row[label]["exit_code"] != 0:
                    raise SystemExit(f"{label} check of {n} models failed: {row[label]['counts']}")
            row["ratio_ray_over_local"] = row["ray"]["wall_s"] / row["local"]["wall_s"]
            row["load_after"] = load_average()
            rows.append(row)
            print(
                f"N={n:>3}: local --jobs {args.jobs} {row['local']['wall_s']:6.1f} s, ray {row['ray']['wall_s']:6.1f} s,"
                f" ray/local {row['ratio_ray_over_local']:.2f} (load {row['load_before']:.1f} -> "
                f"{row['load_after']:.1f})",
                flush=True,
            )
    lines = {label: fit([(r["models"], r[label]["wall_s"]) for r in rows]) for label in ("local", "ray")}
    for label, (fixed, per) in lines.items():
        busy = sum(r[label]["model_s_sum"] for r in rows) / sum(r["models"] for r in rows)
        print(f"{label:>5}: wall ~ {fixed:.1f} s + {per:.2f} s x N  (busy time per model in a worker: {busy:.2f} s)")
    if args.json_out:
        Path(args.json_out).write_text(
            json.dumps(
                {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "jobs": args.jobs,
                    "rows": rows,
                    "fit": {label: {"fixed_s": f, "per_model_s": p} for label, (f, p) in lines.items()},
                    "busy_per_model_s": {
                        label: sum(r[label]["model_s_sum"] for r in rows) / sum(r["models"] for r in rows)
                        for label in ("local", "ray")
                    },
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
