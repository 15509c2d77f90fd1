"""What ``onnxbridge debug`` costs against one ``onnxbridge validate`` of the same broken model.

For each model (BERT-base and ResNet-18 shapes from bench/models.py, random weights), the source is
exported once through ``onnxbridge convert``, one module's weight is changed in the ONNX file (the
planted bug), then each scenario runs in a fresh process, ``--repeat`` times (median):

- ``validate``: ``api.validate(SOURCE, bad.onnx)``, the parity check as users run it;
- ``debug:MB``: ``api.debug(SOURCE, bad.onnx, budget_mb=MB)``: the same validation, then the stage
  table, the budgeted descent and the repro (``inf``: no budget, every value in one pass).

Time is the wall time of the API call (the source loaded, the validation, the localisation); peak memory
is the process's high-water mark (VmHWM) during the call above its resident size just before it (imports
done). The figures print as a table and go to ``--json``.

    .venv/bin/python bench/bench_localize.py [--models bert_base,resnet18] [--repeat 3] [--json OUT.json]
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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "bench" / "models.py"
SCENARIOS = ("validate", "debug:inf", "debug:64", "debug:8")
PLANTED = {"bert_base": "encoder.layer.7.attention.self.value", "resnet18": None}  # None: a Conv mid-network


def _rss() -> tuple[float, float]:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def plant(model_path: Path, out: Path, module: str | None) -> str:
    """Scale one weight by 1.05 (``module``'s MatMul / Gemm, or the Conv in the middle of the graph)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from onnxbridge.localize.origins import origins

    model = onnx.load(str(model_path))
    table = origins(model)
    inits = {i.name: i for i in model.graph.initializer}
    ops = ("MatMul", "Gemm") if module else ("Conv",)
    nodes = [
        n
        for n in model.graph.node
        if n.op_type in ops and n.name in table and (module is None or table[n.name].module.qualname == module)
    ]
    node = nodes[len(nodes) // 2] if module is None else nodes[0]
    name = next(i for i in node.input[1:] if i in inits)
    inits[name].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(inits[name]) * np.float32(1.05), name))
    onnx.save(model, str(out))
    return str(table[node.name].module)


def one(source: str, bad: str, scenario: str) -> dict:
    """One measurement, in this (fresh) process."""
    import onnxruntime  # noqa: F401  (imports before the baseline)
    import torch  # noqa: F401
    import transformers  # noqa: F401

    from onnxbridge import api

    base, _ = _rss()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM
    t0 = time.perf_counter()
    if scenario == "validate":
        report = api.validate(source, bad)
        extra = {"validate_s": report.validation.seconds, "cases": len(report.validation.cases)}
    else:
        mb = scenario.split(":")[1]
        report = api.debug(source, bad, budget_mb=1e6 if mb == "inf" else float(mb), repro_dir=Path(bad).parent)
        loc = report.localization
        extra = {
            "validate_s": report.validation.seconds,
            "localize_s": loc.seconds,
            "passes": loc.passes,
            "values_marked": loc.values_marked,
            "compared": loc.compared,
            "total": loc.total,
            "found": loc.first.name if loc.first else None,
            "call_site": str(loc.first.call_site) if loc.first and loc.first.call_site else None,
            "repro_nodes": loc.repro.nodes if loc.repro else None,
            "repro_reproduces": loc.repro.reproduces if loc.repro else None,
        }
    seconds = time.perf_counter() - t0
    _, peak = _rss()
    return {"seconds": seconds, "peak_mb": peak - base, "passed": report.passed, **extra}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="bert_base,resnet18")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--one", nargs=3, metavar=("SOURCE", "BAD", "SCENARIO"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print("RESULT", json.dumps(one(*args.one)))
        return 0
    sys.path.insert(0, str(ROOT))
    from onnxbridge import api

    rows, started = [], os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-localize-"))
    for name in args.models.split(","):
        source = f"{MODELS}:{name}"
        good, bad = work / f"{name}.onnx", work / f"{name}.bad.onnx"
        t0 = time.perf_counter()
        api.convert(source, good, validate=False)
        planted = plant(good, bad, PLANTED.get(name))
        print(f"{name}: exported in {time.perf_counter() - t0:.1f} s; planted a 1.05x weight in {planted}", flush=True)
        for scenario in SCENARIOS:
            runs = []
            for _ in range(args.repeat):
                p = subprocess.run(
                    [sys.executable, __file__, "--one", source, str(bad), scenario],
                    capture_output=True,
                    text=True,
                    cwd=ROOT,
                )
                line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
                if not line:
                    print(p.stderr[-3000:], file=sys.stderr)
                    return 1
                runs.append(json.loads(line[-1][7:]))
            timed = ("seconds", "peak_mb", "validate_s", "localize_s")
            med = {k: statistics.median(r[k] for r in runs) for k in timed if k in runs[0]}
            rows.append(
                {
                    "model": name,
                    "planted": planted,
                    "scenario": scenario,
                    **runs[0],
                    **med,
                    "runs": [{k: r[k] for k in timed if k in r} for r in runs],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    for r in rows:
        base = next(b for b in rows if b["model"] == r["model"] and b["scenario"] == "validate")
        r["x_validate_time"] = r["seconds"] / base["seconds"]
        r["x_validate_peak"] = r["peak_mb"] / base["peak_mb"] if base["peak_mb"] > 0 else None
    print("\n| model | scenario | seconds | x validate | peak MB | x validate | passes | values marked | found |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['model']} | {r['scenario']} | {r['seconds']:.2f} | {r['x_validate_time']:.2f} | {r['peak_mb']:.0f} | "
            f"{(r['x_validate_peak'] or 0):.2f} | {r.get('passes', '-')} | {r.get('values_marked', '-')} | "
            f"{r.get('found') or '-'} |"
        )
    result = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_start": started,
            "load_end": os.getloadavg(),
        },
        "repeat": args.repeat,
        "rows": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
