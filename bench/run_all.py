"""The onnxbridge bench suite: one run, one machine, one JSON file.

    .venv/bin/python bench/run_all.py [--out bench/results/cpu.json] [--quick] [--only startup,harness,...]

Sections (each writes its figures and the target it is held to):

- ``startup``: ``import onnxbridge`` and ``onnxbridge --help`` wall time, and that neither imports
  torch or tensorflow (target < 0.5 s);
- ``harness``: ``onnxbridge.bench`` latency vs a bare ``session.run`` loop on the same model, rounds
  interleaved (target: within 2 %);
- ``pipeline``: ``onnxbridge convert`` vs the same steps by hand (torch.onnx.export, onnxsim, an ONNX
  Runtime check), each in a fresh process, with onnxbridge's per-stage breakdown (target: at most 10 %
  slower);
- ``models``: ONNX Runtime CPU vs PyTorch eager CPU on ResNet-18, BERT-base and GPT-2-small shaped
  models (random weights), batch 1 and 8, plain and optimised exports (target: optimised >= 1.5x
  PyTorch eager on BERT-base, batch 1, sequence 128).

The machine is shared and noisy: every figure is a median over interleaved rounds, and the load
average before and after each section is recorded beside it.
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
PY = sys.executable
MODELS = str(ROOT / "bench" / "models.py")


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_py(code: str, env: dict | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run([PY, "-c", code], capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return wall, out.stdout


# ------------------------------------------------------------------ startup


def startup(rounds: int) -> dict:
    base, imp, helps = [], [], []
    cli = str(Path(PY).parent / "onnxbridge")
    for _ in range(rounds):
        base.append(run_py("pass")[0])
        imp.append(run_py("import onnxbridge")[0])
        t0 = time.perf_counter()
        subprocess.run([cli, "--help"], capture_output=True, check=True)
        helps.append(time.perf_counter() - t0)
    _, mods = run_py(
        "import sys, onnxbridge, onnxbridge.cli;"
        "from onnxbridge.cli import main; main(['--help']);"
        "print('\\nHEAVY', [m for m in ('torch', 'tensorflow', 'keras', 'onnxruntime') if m in sys.modules])"
    )
    heavy = mods.rsplit("HEAVY", 1)[1].strip()
    return {
        "python_startup_s": statistics.median(base),
        "import_onnxbridge_s": statistics.median(imp),
        "import_onnxbridge_over_python_s": statistics.median(imp) - statistics.median(base),
        "help_s": statistics.median(helps),
        "heavy_modules_imported": heavy,
        "target_s": 0.5,
        "met": statistics.median(helps) < 0.5 and statistics.median(imp) < 0.5 and heavy == "[]",
    }


# ------------------------------------------------------------------ harness overhead


def harness(model_path: Path, runs: int, rounds: int, batch: int = 1, extra: dict | None = None) -> dict:
    import numpy as np
    import onnxruntime as ort

    import onnxbridge
    from onnxbridge.onnxio import input_specs, load_onnx
    from onnxbridge.parity.inputs import generate_inputs

    model = load_onnx(model_path)
    specs = input_specs(model)
    sizes = {d: (batch if i == 0 else 8) for s in specs for i, d in enumerate(s.dims) if isinstance(d, str)}
    sizes.update(extra or {})
    feeds = generate_inputs(specs, sizes, 0)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ours, bare = [], []
    for _ in range(rounds):
        r = onnxbridge.bench(
            model_path, providers=["cpu"], runs=runs, warmup=10, batches=[batch], axis_sizes=extra or None
        )
        ours.append(r.bench["latency_ms"]["p50"])
        for _ in range(10):
            session.run(None, feeds)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            session.run(None, feeds)
            times.append(time.perf_counter() - t0)
        bare.append(float(np.percentile(np.asarray(times) * 1000, 50)))
    o, b = statistics.median(ours), statistics.median(bare)
    return {
        "model": model_path.name,
        "runs_per_round": runs,
        "rounds": rounds,
        "onnxbridge_p50_ms": o,
        "bare_session_run_p50_ms": b,
        "overhead": o / b - 1,
        "rounds_onnxbridge_ms": ours,
        "rounds_bare_ms": bare,
        "target": 0.02,
        "met": o / b - 1 <= 0.02,
    }


def tiny_mlp(path: Path) -> Path:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    w = helper.make_tensor(
        "W", TensorProto.FLOAT, [256, 256], rng.standard_normal((256, 256)).astype(np.float32).ravel()
    )
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["h"]), helper.make_node("Relu", ["h"], ["y"])],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 256])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 256])],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


# ------------------------------------------------------------------ pipeline overhead

ONNXBRIDGE_CONVERT = """
import json, time, sys
t0 = time.perf_counter()
import onnxbridge
r = onnxbridge.convert("onnxbridge.demo.models:small_cnn", sys.argv[1] if len(sys.argv) > 1 else "{out}",
                       inputs=["pixel_values:batch,3,32,32:float32"], provider="cpu")
d = r.to_dict()
print(json.dumps({{"total_s": time.perf_counter() - t0, "timings": d["timings"], "passed": d["passed"],
                  "cases": len(d["validation"]["cases"]), "route": d["route"]}}))
"""

BY_HAND = """
import json, time
t0 = time.perf_counter()
import numpy as np, onnx, onnxruntime as ort, onnxsim, torch
from onnxbridge.demo.models import small_cnn
t_import = time.perf_counter()
model, (x,) = small_cnn()
batch = torch.export.Dim("batch")
prog = torch.onnx.export(model, (x,), dynamo=True, input_names=["pixel_values"],
                         dynamic_shapes=({{0: batch}},), verbose=False)
proto = prog.model_proto
t_export = time.perf_counter()
simplified, ok = onnxsim.simplify(proto)
t_simplify = time.perf_counter()
onnx.save(simplified, "{out}")
sess = ort.InferenceSession("{out}", providers=["CPUExecutionProvider"])
cases = {cases}
for i in range(cases):
    xi = torch.randn(1 + i % 5, 3, 32, 32)
    with torch.inference_mode():
        ref = model(xi).numpy()
    got = sess.run(None, {{"pixel_values": xi.numpy()}})[0]
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-4)
t_end = time.perf_counter()
print(json.dumps({{"total_s": t_end - t0, "import_s": t_import - t0, "export_s": t_export - t_import,
                  "simplify_s": t_simplify - t_export, "check_s": t_end - t_simplify, "cases": cases}}))
"""


def pipeline(rounds: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="onnxbridge-bench-"))
    ours, hand1, handn = [], [], []
    for i in range(rounds):
        _, out = run_py(ONNXBRIDGE_CONVERT.format(out=tmp / f"ob{i}.onnx"))
        ours.append(json.loads(out))
        cases = ours[-1]["cases"]
        _, out = run_py(BY_HAND.format(out=tmp / f"h1_{i}.onnx", cases=1))
        hand1.append(json.loads(out))
        _, out = run_py(BY_HAND.format(out=tmp / f"hn_{i}.onnx", cases=cases))
        handn.append(json.loads(out))
    med = lambda rows, k: statistics.median(r[k] for r in rows)  # noqa: E731
    o, h1, hn = med(ours, "total_s"), med(hand1, "total_s"), med(handn, "total_s")
    stages = {k: statistics.median(r["timings"].get(k, 0.0) for r in ours) for k in ours[0]["timings"]}
    return {
        "model": "onnxbridge.demo.models:small_cnn (dynamic batch)",
        "rounds": rounds,
        "onnxbridge_convert_s": o,
        "onnxbridge_stages_s": stages,
        "onnxbridge_parity_cases": ours[0]["cases"],
        "by_hand_1_check_s": h1,
        "by_hand_1_check_stages_s": {k: med(hand1, k) for k in ("import_s", "export_s", "simplify_s", "check_s")},
        "by_hand_same_cases_s": hn,
        "by_hand_same_cases_stages_s": {k: med(handn, k) for k in ("import_s", "export_s", "simplify_s", "check_s")},
        "overhead_vs_minimal": o / h1 - 1,
        "overhead_vs_same_checks": o / hn - 1,
        "target": 0.10,
        "met": o / hn - 1 <= 0.10,
        "raw": {"onnxbridge": ours, "by_hand_1": hand1, "by_hand_same": handn},
    }


# ------------------------------------------------------------------ ORT vs PyTorch eager

MODEL_SPECS = {
    "resnet18": (["pixel_values:batch,3,224,224:float32"], {}),
    "bert_base": (["input_ids:batch,seq:int64", "attention_mask:batch,seq:int64"], {"seq": 128}),
    "gpt2_small": (["input_ids:batch,seq:int64", "attention_mask:batch,seq:int64"], {"seq": 128}),
}


def models(names: list[str], batches: list[int], runs: int, work: Path, threads: int | None) -> dict:
    from onnxbridge import bench, convert, simplify

    out: dict = {}
    for name in names:
        inputs, axes = MODEL_SPECS[name]
        source = f"{MODELS}:{name}"
        plain = work / f"{name}.onnx"
        opt = work / f"{name}.opt.onnx"
        entry: dict = {"source": source, "inputs": inputs, "axis_sizes": axes, "load_before": load()}
        t0 = time.perf_counter()
        conv = convert(source, plain, inputs=inputs, validate=False)
        entry["convert_s"] = time.perf_counter() - t0
        entry["convert_timings"] = conv.timings
        entry["route"] = conv.conversion.route
        t0 = time.perf_counter()
        simp = simplify(plain, opt, optimize="cpu", fuse_transformer="auto")
        entry["optimize_s"] = time.perf_counter() - t0
        entry["optimize"] = simp.to_dict().get("optimize")
        rows = []
        for label, path in (("plain", plain), ("optimised", opt)):
            r = bench(
                path,
                source=source,
                inputs=inputs,
                providers=["cpu"],
                batches=batches,
                axis_sizes=axes or None,
                runs=runs,
                warmup=3,
                threads=threads,
            )
            b = r.bench
            refs = {x["batch"]: x for x in b["reference_results"]}
            for row in b["results"]:
                ref = refs[row["batch"]]
                rows.append(
                    {
                        "export": label,
                        "batch": row["batch"],
                        "ort_p50_ms": row["latency_ms"]["p50"],
                        "ort_mean_ms": row["latency_ms"]["mean"],
                        "torch_p50_ms": ref["latency_ms"]["p50"],
                        "torch_mean_ms": ref["latency_ms"]["mean"],
                        "speedup": row["speedup_vs_reference"],
                        "runs": row["runs"],
                    }
                )
            entry.setdefault("reference_parity", {})[label] = b["reference_parity"]
            entry.setdefault("notes", []).extend(r.notes)
        entry["rows"] = rows
        entry["load_after"] = load()
        out[name] = entry
    bert = out.get("bert_base")
    if bert:
        row = next((r for r in bert["rows"] if r["export"] == "optimised" and r["batch"] == 1), None)
        if row:
            out["target"] = {
                "what": "optimised BERT-base batch 1 seq 128 vs PyTorch eager",
                "target": 1.5,
                "speedup": row["speedup"],
                "met": row["speedup"] >= 1.5,
            }
    return out


def machine() -> dict:
    import onnxruntime
    import torch

    return {
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_at_start": load(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "cpu.json"))
    ap.add_argument("--only", default="startup,harness,pipeline,models")
    ap.add_argument("--models", default="resnet18,bert_base,gpt2_small")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--runs", type=int, default=10, help="timed runs per model measurement")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    args = ap.parse_args()
    only = set(args.only.split(","))
    rounds = 2 if args.quick else 5
    result: dict = {"command": " ".join(["python"] + sys.argv), "machine": machine()}
    work = Path(tempfile.mkdtemp(prefix="onnxbridge-bench-models-"))
    if "startup" in only:
        result["startup"] = {**startup(rounds * 2), "load": load()}
        print("startup", json.dumps(result["startup"]), flush=True)
    if "harness" in only:
        result["harness"] = {
            "tiny_mlp": {**harness(tiny_mlp(work / "mlp.onnx"), 2000, rounds), "load": load()},
        }
        print("harness", json.dumps(result["harness"]), flush=True)
    if "pipeline" in only:
        result["pipeline"] = {**pipeline(2 if args.quick else 3), "load": load()}
        print("pipeline", json.dumps({k: v for k, v in result["pipeline"].items() if k != "raw"}), flush=True)
    if "models" in only:
        names = [m for m in args.models.split(",") if m]
        result["models"] = models(names, [int(b) for b in args.batches.split(",")], args.runs, work, args.threads)
        if "resnet18" in names and "harness" in only:
            result["harness"]["resnet18"] = {**harness(work / "resnet18.onnx", 30, rounds), "load": load()}
        print("models", json.dumps({k: v.get("rows", v) for k, v in result["models"].items()}), flush=True)
    result["machine"]["load_at_end"] = load()
    import shutil

    shutil.rmtree(work, ignore_errors=True)  # the exported models (hundreds of MB each)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
