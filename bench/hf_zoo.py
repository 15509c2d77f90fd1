"""Hugging Face families through ``onnxbridge convert``: route, time, worst error, and an independent check.

Tiny configs with random weights (tests/models/hf_models.py: T5, BART, Whisper with a batch-1 example, Qwen2,
CLIP, wav2vec2, Swin, ConvNeXt, SegFormer). For each: convert (validation on ``--provider``), then run the ONNX
file on ONNX Runtime at sizes the validator never used and compare with transformers directly.

    .venv/bin/python bench/hf_zoo.py [--provider cpu|cuda] [--family t5 --family swin ...] [--simplify]
                                     [--json OUT.json]

Prints one line per family and, with --json, writes every figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = ROOT / "tests" / "models" / "hf_models.py"
ORT_PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}


def _independent(name: str, out: Path, output_names: tuple[str, ...], provider: str, dynamic_axes) -> dict:
    """Max abs error of ONNX Runtime vs transformers at sizes the validator did not use."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from tests.models import hf_models

    _, other_sizes, make = hf_models.FAMILIES[name]
    model, _ = getattr(hf_models, name)()
    sess = ort.InferenceSession(str(out), providers=ORT_PROVIDERS[provider])
    names = [o.name for o in sess.get_outputs()]
    errors = {}
    for i, sizes in enumerate(other_sizes):
        unused = all(size not in dynamic_axes.get(axis, ()) for axis, size in sizes.items())
        feeds = make(sizes, 100 + i)
        kwargs = {k: torch.from_numpy(v) for k, v in feeds.items()}
        if "use_cache" in model.forward.__code__.co_varnames:
            kwargs["use_cache"] = False
        with torch.no_grad():
            ref = model(**kwargs)
        got = dict(zip(names, sess.run(None, feeds)))
        worst = max(float(np.max(np.abs(got[n] - ref[n].numpy()))) for n in output_names if n in got and "." not in n)
        errors[",".join(f"{k}={v}" for k, v in sizes.items())] = {"max_abs": worst, "unused_by_validator": unused}
    return errors


def run(name: str, provider: str, simplify: bool, folder: Path) -> dict:
    import onnxbridge
    from tests.models import hf_models

    specs = hf_models.FAMILIES[name][0]
    out = folder / f"{name}.onnx"
    t0 = time.perf_counter()
    try:
        report = onnxbridge.convert(f"{MODELS}:{name}", out, inputs=specs, simplify=simplify, provider=provider)
    except Exception as e:  # a family that fails is a figure too
        return {"family": name, "ok": False, "error": f"{type(e).__name__}: {str(e)[:500]}"}
    v = report.validation
    row = {
        "family": name,
        "ok": bool(report.passed),
        "route": report.conversion.route,
        "total_s": round(time.perf_counter() - t0, 2),
        "export_s": round(report.conversion.seconds, 2),
        "validate_s": round(v.seconds, 2),
        "provider_used": v.provider_used,
        "summary": v.summary(),
        "cases_compared": v.compared,
        "cases_source_cannot_run": len(v.cases) - v.compared,
        "worst_max_abs": v.worst_abs,
        "outputs": list(report.conversion.output_names),
        "axes": [
            {
                "axis": a.axis,
                "exported": a.exported,
                "smallest_runnable": a.smallest_runnable,
                "outcome": a.outcome.value,
            }
            for a in v.axes
        ],
        "routes_tried": [{"route": a.route, "ok": a.ok, "error": a.error} for a in report.conversion.attempts],
    }
    row["independent"] = _independent(name, out, report.conversion.output_names, provider, v.dynamic_axes)
    return row


def main() -> int:
    from tests.models import hf_models

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--provider", choices=sorted(ORT_PROVIDERS), default="cpu")
    ap.add_argument("--family", action="append", choices=sorted(hf_models.FAMILIES))
    ap.add_argument(
        "--simplify", action="store_true", help="also simplify (parity-checked), as convert does by default"
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.family or sorted(hf_models.FAMILIES):
            row = run(name, args.provider, args.simplify, Path(tmp))
            rows.append(row)
            if not row["ok"] and "route" not in row:
                print(f"{name:10s} FAILED {row['error'][:200]}")
                continue
            indep = max((e["max_abs"] for e in row["independent"].values()), default=float("nan"))
            print(
                f"{name:10s} {'pass' if row['ok'] else 'FAIL'} {row['route']:20s} export {row['export_s']:6.1f} s "
                f"validate {row['validate_s']:5.1f} s  cases {row['cases_compared']:2d} "
                f"(+{row['cases_source_cannot_run']} not runnable)  worst {row['worst_max_abs']:.2e}  "
                f"independent {indep:.2e}  on {row['provider_used']}"
            )
    if args.json:
        import onnxruntime
        import torch
        import transformers

        meta = {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "transformers": transformers.__version__,
            "machine": platform.machine(),
            "provider": args.provider,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "families": rows}, indent=2, default=str) + "\n")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
