"""onnxbridge's Keras conversion against ``tf2onnx.convert.from_keras`` by hand, in one run.

    .venv/bin/python bench/bench_keras.py [--models resnet50,vgg16] [--rounds 3] [--out bench/results/keras.json]

For each keras.applications model (weights=None, logits out; ResNet50 at 64x64, VGG16 at 32x32):

- ``tf2onnx``: ``tf2onnx.convert.from_keras(model, input_signature, opset)``, as a user would call it;
- ``onnxbridge``: the ``tf2onnx`` route of onnxbridge's Keras converter (trace, freeze, grappler,
  tf2onnx handlers and optimizers; see ``onnxbridge/converters/tf_graph.py``) on the same model
  object, same opset, same dynamic batch axis.

Both ONNX models then run on ONNX Runtime CPU on the same input (batch 3, never the export size)
and are compared with Keras eager: the max abs error of each is reported beside the timings, with
node counts (the two graphs should match). Rounds alternate which side goes first, after one
warm-up conversion of a small model by each; the figures are medians. ``--full`` also times the
whole ``onnxbridge.convert`` pipeline (load, export, simplify, validate) for the record.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OPSET = 18
SHAPES = {"resnet50": (64, 64, 3), "vgg16": (32, 32, 3), "mobilenet_v2": (32, 32, 3), "tiny": (8,)}


def build(name: str):
    """A keras.applications model with random weights and logits out (the module-level factories below)."""
    import keras

    keras.utils.set_random_seed(0)
    if name == "tiny":
        inp = keras.Input((8,), name="x")
        return keras.Model(inp, keras.layers.Dense(4)(inp))
    ctor = {
        "resnet50": keras.applications.ResNet50,
        "vgg16": keras.applications.VGG16,
        "mobilenet_v2": keras.applications.MobileNetV2,
    }[name]
    return ctor(weights=None, input_shape=SHAPES[name], classes=1000, classifier_activation=None)


def resnet50():
    return build("resnet50")


def vgg16():
    return build("vgg16")


def by_hand(model, shape):
    """What a tf2onnx user writes."""
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec((None, *shape), tf.float32, name="x"),)
    t0 = time.perf_counter()
    onnx_model, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    return time.perf_counter() - t0, onnx_model


def with_onnxbridge(model, name):
    """onnxbridge's Keras converter: load the in-memory model, then export through its tf2onnx route."""
    from onnxbridge.converters.base import ExportRequest
    from onnxbridge.converters.keras import KerasConverter, KerasTf2OnnxRoute
    from onnxbridge.sources import SourceRef
    from onnxbridge.specs import TensorSpec

    ref = SourceRef(f"bench_keras.py:{name}", "python-module", module="bench_keras", attr=name)
    spec = TensorSpec("x", ("batch", *SHAPES[name]))
    loaded = KerasConverter().load(ref, (spec,), obj=model)
    t0 = time.perf_counter()
    product = KerasTf2OnnxRoute().export(loaded, ExportRequest(opset=OPSET))
    return time.perf_counter() - t0, product.model


def max_error(onnx_model, model, shape) -> tuple[float, float]:
    """(max abs error of the ONNX model against Keras eager, max abs of the Keras output)."""
    import numpy as np
    import onnxruntime as ort

    x = np.random.default_rng(1).standard_normal((3, *shape)).astype(np.float32)
    sess = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    ref = model(x, training=False).numpy()
    return float(np.abs(got - ref).max()), float(np.abs(ref).max())


def full_convert(name: str) -> dict:
    import onnxbridge

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        report = onnxbridge.convert(
            f"{Path(__file__).resolve()}:{name}",
            Path(tmp) / f"{name}.onnx",
            inputs=[f"x:batch,{','.join(map(str, SHAPES[name]))}"],
            opset=OPSET,
        )
        total = time.perf_counter() - t0
    return {
        "seconds": round(total, 2),
        "timings": {k: round(v, 2) for k, v in report.timings.items()},
        "passed": report.passed,
        "route": report.conversion.route,
    }


def bench_model(name: str, rounds: int, full: bool) -> dict:
    model = build(name)
    shape = SHAPES[name]
    times = {"tf2onnx": [], "onnxbridge": []}
    products = {}
    for r in range(rounds):
        order = ("tf2onnx", "onnxbridge") if r % 2 == 0 else ("onnxbridge", "tf2onnx")
        for side in order:
            products.pop(side, None)
            gc.collect()  # VGG16 is 550 MB of weights: keep one product per side, no more
            secs, onnx_model = by_hand(model, shape) if side == "tf2onnx" else with_onnxbridge(model, name)
            times[side].append(secs)
            products[side] = onnx_model
            print(f"  {name} round {r + 1}: {side:10s} {secs:6.2f} s", flush=True)
    result = {"input_shape": [None, *shape], "params": int(model.count_params()), "rounds": rounds}
    for side, onnx_model in products.items():
        err, scale = max_error(onnx_model, model, shape)
        result[side] = {
            "median_s": round(statistics.median(times[side]), 2),
            "all_s": [round(t, 2) for t in times[side]],
            "nodes": len(onnx_model.graph.node),
            "max_abs_error": err,
        }
        result["output_scale"] = scale
    result["speedup"] = round(result["tf2onnx"]["median_s"] / result["onnxbridge"]["median_s"], 2)
    if full:
        result["onnxbridge_full_convert"] = full_convert(name)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="resnet50,vgg16")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--full", action="store_true", help="also time the whole onnxbridge.convert pipeline")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "keras.json"))
    args = ap.parse_args(argv)

    import tensorflow as tf

    tiny = build("tiny")  # warm-up: TensorFlow's tracing and grappler, tf2onnx's handler tables
    by_hand(tiny, SHAPES["tiny"])
    with_onnxbridge(tiny, "tiny")

    results = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg_before": list(os.getloadavg())},
        "versions": {
            "tensorflow": tf.__version__,
            "tf2onnx": __import__("tf2onnx").__version__,
            "keras": __import__("keras").__version__,
            "onnxruntime": __import__("onnxruntime").__version__,
        },
        "opset": OPSET,
        "models": {},
    }
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        results["models"][name] = bench_model(name, args.rounds, args.full)
    results["machine"]["loadavg_after"] = list(os.getloadavg())

    print(
        f"\n{'model':14s} {'tf2onnx s':>10s} {'onnxbridge s':>13s} {'speedup':>8s} {'max err tf2onnx':>16s} "
        f"{'max err onnxbridge':>19s} {'nodes':>9s}"
    )
    for name, r in results["models"].items():
        print(
            f"{name:14s} {r['tf2onnx']['median_s']:10.2f} {r['onnxbridge']['median_s']:13.2f} "
            f"{r['speedup']:7.2f}x {r['tf2onnx']['max_abs_error']:16.2e} {r['onnxbridge']['max_abs_error']:19.2e} "
            f"{r['tf2onnx']['nodes']:4d}/{r['onnxbridge']['nodes']:<4d}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
