#!/usr/bin/env python3
"""Deployment variants against the issue's targets, in one run (CPU):

- BERT-base (config, random weights) + a 9-label token head, batch 1, seq 128: the best gated variant
  >= 2.0x faster than PyTorch eager fp32, argmax agreement >= 99 %, cosine >= 0.999;
- a ResNet-50-shaped CNN: int8 static >= 1.5x faster than fp32 ONNX Runtime; top-1 agreement >= 99 % on
  calibration-disjoint inputs, measured on a small ResNet trained here for a minute (a random ResNet-50's
  top-1 is decided by noise or by one class; its agreement is printed with the count of distinct classes);
- a small Llama-style decoder LM: the int4 weight-only file <= 0.3x the fp32 size, argmax agreement reported.

Every figure comes from ``onnxbridge.variant`` (the gate users run), timed in interleaved rounds beside fp32
ONNX Runtime and the source's eager model in the same process. The machine is shared: the load average is
recorded before and after each model, and ratios of p50s from one run are the figures to read.

    .venv/bin/python bench/bench_variants.py [--only bert,cnn,lm] [--out bench/results/variants.json] [--tiny]

``--tiny`` runs the same code on tiny configs (a smoke test, about a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
SEQ = 128
TINY = os.environ.get("ONNXBRIDGE_BENCH_TINY") == "1"


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ------------------------------------------------------------------ sources (zero-argument factories)


def bert_tokens():
    """BERT-base + a 9-label token-classification head (logits [batch, seq, 9]), random but non-trivial."""
    import torch
    from transformers import BertConfig, BertForTokenClassification

    from bench.models import _seeded, _trained_like

    _seeded()
    config = (
        BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
        if TINY
        else BertConfig()
    )
    config.num_labels, config.hidden_act, config._attn_implementation = 9, "gelu", "eager"
    model = _trained_like(BertForTokenClassification(config))
    ids = torch.randint(0, config.vocab_size, (2, SEQ))
    return model, {"input_ids": ids, "attention_mask": torch.ones(2, SEQ, dtype=torch.int64)}


def resnet50():
    """A ResNet-50-shaped CNN (bottleneck 3-4-6-3), 224x224, 1000 classes, random but non-trivial."""
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification

    from bench.models import _seeded, _trained_like

    _seeded()
    config = (
        ResNetConfig(depths=[1, 1, 1, 1], hidden_sizes=[16, 32, 64, 128], embedding_size=16) if TINY else ResNetConfig()
    )
    return _trained_like(ResNetForImageClassification(config)), {"pixel_values": torch.randn(2, 3, 224, 224)}


def llama_small():
    """A Llama-style decoder (hidden 768, 8 layers, 12 heads / 4 KV heads, vocab 32000), no KV cache."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from bench.models import _seeded, _trained_like

    _seeded()
    config = LlamaConfig(
        hidden_size=768,
        intermediate_size=2048,
        num_hidden_layers=8,
        num_attention_heads=12,
        num_key_value_heads=4,
        vocab_size=32000,
        max_position_embeddings=512,
        use_cache=False,
    )
    if TINY:
        config = LlamaConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            vocab_size=1000,
            max_position_embeddings=256,
            use_cache=False,
        )
    config._attn_implementation = "eager"
    model = _trained_like(LlamaForCausalLM(config))
    ids = torch.randint(0, config.vocab_size, (2, SEQ))
    return LogitsOnly(model), {"input_ids": ids, "attention_mask": torch.ones(2, SEQ, dtype=torch.int64)}


def _torch_module():
    import torch

    return torch.nn.Module


class LogitsOnly(_torch_module()):
    """The LM's logits alone (no cache, no hidden states)."""

    def __init__(self, lm):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids, attention_mask):
        return self.lm(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


# ------------------------------------------------------------------ a small CNN trained here (meaningful top-1)

SIZE, CLASSES = 64, 10


def synthetic_images(n: int, seed: int):
    """Images of 10 classes: an 8x8 class pattern upscaled, scaled, shifted, plus noise."""
    import numpy as np

    protos = np.random.default_rng(0).standard_normal((CLASSES, 3, 8, 8)).astype(np.float32)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    x = protos[labels] * rng.uniform(0.5, 1.5, (n, 1, 1, 1)).astype(np.float32)
    x = np.repeat(np.repeat(x, SIZE // 8, 2), SIZE // 8, 3)
    x = np.roll(x, tuple(rng.integers(-4, 5, 2)), axis=(2, 3))
    return (x + 0.8 * rng.standard_normal(x.shape)).astype(np.float32), labels


def trained_cnn():
    """A small ResNet (basic blocks 2-2-2) trained on ``synthetic_images`` (150 steps of 32, ~1-2 min on 2 cores)."""
    import torch
    from transformers import ResNetConfig, ResNetForImageClassification

    torch.manual_seed(0)
    config = ResNetConfig(
        layer_type="basic", depths=[2, 2, 2], hidden_sizes=[32, 64, 128], embedding_size=32, num_labels=CLASSES
    )
    model = ResNetForImageClassification(config)
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    model.train()
    for step in range(30 if TINY else 150):
        x, y = synthetic_images(32, 1000 + step)
        loss = torch.nn.functional.cross_entropy(model(pixel_values=torch.from_numpy(x)).logits, torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), {"pixel_values": torch.from_numpy(synthetic_images(2, 7)[0])}


# ------------------------------------------------------------------ runs


def convert(source: str, out: Path, inputs: list[str], **kw) -> dict:
    import onnxbridge

    t0 = time.perf_counter()
    report = onnxbridge.convert(source, out, inputs=inputs, provider="cpu", **kw)
    d = report.to_dict()
    return {
        "seconds": time.perf_counter() - t0,
        "route": d["route"],
        "passed": d["passed"],
        "optimize": (d.get("optimize") or {}).get("fused_ops"),
    }


def variants(model: Path, kinds: list[str], *, source: str | None = None, inputs: list[str] = (), **kw) -> dict:
    from onnxbridge.api import variant_with
    from onnxbridge.options import ExportOptions, TimingPlan, VariantOptions

    options = VariantOptions(
        tuple(kinds),
        "cpu",
        timing=TimingPlan(warmup=3, runs=kw.pop("runs", 10)),
        rounds=kw.pop("rounds", 3),
        min_speedup=kw.pop("min_speedup", None),
        write_failed=True,
        **kw,
    )
    report = variant_with(model, options, source=source, export=ExportOptions(tuple(inputs)))
    return report.to_dict()["variants"]


def eager_p50(factory, threads: int, runs: int = 10) -> float:
    """p50 ms of the source's eager model at batch 1 with ``threads`` torch threads (a separate check: under
    load, torch's OpenMP threads fight the machine's other work and 2 threads can be slower than 1)."""
    import statistics

    import torch

    model, example = factory()
    feeds = {k: v[:1] for k, v in example.items()}
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            for _ in range(3):
                model(**feeds)
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                model(**feeds)
                times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return statistics.median(times) * 1000


def distinct_classes(model: Path, kinds_result: dict, options_kw: dict) -> int:
    """How many classes the fp32 model predicts over the judging inputs (1: top-1 agreement means nothing)."""
    import numpy as np
    import onnxruntime as ort

    from onnxbridge.converters.base import axis_sizes
    from onnxbridge.onnxio import input_specs, load_onnx
    from onnxbridge.options import VariantOptions
    from onnxbridge.variants.stage import variant_cases

    m = load_onnx(model)
    specs = input_specs(m)
    cases = variant_cases(m, VariantOptions(("int8",), **options_kw), specs, axis_sizes(specs), None)
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return len({int(np.argmax(sess.run(None, c)[0])) for c in cases.judge})


def bench_bert(work: Path) -> dict:
    src = f"{HERE / 'bench_variants.py'}:bert_tokens"
    inputs = ["input_ids:batch,seq:int64", "attention_mask:batch,seq:int64"]
    out = work / "bert.onnx"
    entry = {"load_before": load(), "export": convert(src, out, inputs, fuse_transformer="bert")}
    entry["variants"] = variants(
        out,
        ["int8", "fp16", "int4"],
        source=src,
        inputs=inputs,
        axis_sizes=(("batch", 1), ("seq", SEQ)),
        calibration_cases=2,
        eval_cases=4,
    )
    entry["eager_p50_ms_by_threads"] = {t: eager_p50(bert_tokens, t) for t in (1, 2)}
    entry["load_after"] = load()
    return entry


def bench_cnn(work: Path) -> dict:
    import numpy as np

    from onnxbridge.parity.fixtures import write_fixtures

    entry: dict = {"load_before": load()}
    src = f"{HERE / 'bench_variants.py'}:resnet50"
    out = work / "resnet50.onnx"
    entry["export"] = convert(src, out, ["pixel_values:batch,3,224,224"])
    kw = {"axis_sizes": (("batch", 1),), "calibration_cases": 32, "eval_cases": 32}
    entry["resnet50"] = variants(out, ["int8-static"], min_speedup=1.5, **kw)
    entry["resnet50"]["distinct_fp32_classes"] = distinct_classes(out, entry["resnet50"], kw)
    # the trained stand-in: 200 calibration images (even cases of the file), 200 other judging images (odd)
    t0 = time.perf_counter()
    src = f"{HERE / 'bench_variants.py'}:trained_cnn"
    small = work / "trained_cnn.onnx"
    entry["trained_export"] = convert(src, small, [f"pixel_values:batch,3,{SIZE},{SIZE}"])
    entry["trained_export"]["train_and_export_s"] = time.perf_counter() - t0
    cal, _ = synthetic_images(200, 100)
    ev, labels = synthetic_images(200, 200)
    cases = [(f"c{2 * i + k}", {"pixel_values": x[i : i + 1]}) for i in range(200) for k, x in ((0, cal), (1, ev))]
    npz = write_fixtures(work / "images.npz", inputs=cases)
    entry["trained"] = variants(small, ["int8-static"], min_speedup=1.5, inputs_file=npz, runs=30)
    import onnxruntime as ort

    sess = ort.InferenceSession(str(small), providers=["CPUExecutionProvider"])
    pred = np.concatenate([sess.run(None, {"pixel_values": ev[i : i + 1]})[0] for i in range(200)]).argmax(1)
    entry["trained"]["fp32_label_accuracy"] = float((pred == labels).mean())
    entry["load_after"] = load()
    return entry


def bench_lm(work: Path) -> dict:
    src = f"{HERE / 'bench_variants.py'}:llama_small"
    inputs = ["input_ids:batch,seq:int64", "attention_mask:batch,seq:int64"]
    out = work / "llama.onnx"
    entry = {"load_before": load(), "export": convert(src, out, inputs)}
    entry["variants"] = variants(
        out,
        ["int4", "int8"],
        source=src,
        inputs=inputs,
        axis_sizes=(("batch", 1), ("seq", SEQ)),
        calibration_cases=2,
        eval_cases=4,
    )
    entry["eager_p50_ms_by_threads"] = {t: eager_p50(llama_small, t) for t in (1, 2)}
    entry["load_after"] = load()
    return entry


# ------------------------------------------------------------------ table


def rows(name: str, v: dict) -> list[str]:
    fp32, eager = v["fp32_latency"], v["eager_latency"]
    out = []
    base_acc = {o["name"]: o for o in v["fp32_accuracy"]}
    first = next(iter(base_acc.values()), {})
    out.append(
        f"| {name} | fp32 ORT | {v['fp32_size_bytes'] / 1e6:.1f} MB | {fp32['p50']:.1f} | 1.00x | "
        + (f"{eager['p50'] / fp32['p50']:.2f}x" if eager else "-")
        + f" | cosine {first.get('cosine', 1):.6f}, top1 {first.get('top1') or 0:.4f} | reference |"
    )
    for x in v["variants"]:
        if x["status"] == "unavailable":
            out.append(f"| {name} | {x['kind']} | - | - | - | - | - | unavailable: {x['reasons'][0]} |")
            continue
        acc = "; ".join(
            f"{o['name']}: cosine {o['cosine']:.6f}, cosine_min {o['cosine_min']:.5f}, "
            f"top1 {o['top1'] if o['top1'] is not None else float('nan'):.4f}, "
            f"top1_decisive {o['top1_decisive'] if o['top1_decisive'] is not None else float('nan'):.4f}"
            for o in x["accuracy"]
        )
        verdict = "PASS" if x["status"] == "passed" else "FAIL: " + "; ".join(x["reasons"])
        eager_x = f"{x['speedup_vs_eager']:.2f}x" if x["speedup_vs_eager"] else "-"
        out.append(
            f"| {name} | {x['kind']} | {x['size_bytes'] / 1e6:.1f} MB ({x['size_ratio']:.3f}x) | "
            f"{x['latency']['p50']:.1f} | {x['speedup_vs_fp32']:.2f}x | {eager_x} | {acc} | {verdict} |"
        )
    return out


def write(path: str, result: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=1) + "\n")


def main() -> None:
    global TINY
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="bert,cnn,lm")
    ap.add_argument("--out", default=str(HERE / "results" / "variants.json"))
    ap.add_argument("--tiny", action="store_true")
    args = ap.parse_args()
    if args.tiny:
        os.environ["ONNXBRIDGE_BENCH_TINY"] = "1"  # the factories are imported again by onnxbridge
        TINY = True
    import onnxruntime
    import torch

    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "torch_threads": torch.get_num_threads(),
            "load_at_start": load(),
        },
        "command": " ".join(["python"] + sys.argv),
        "tiny": TINY,
    }
    with tempfile.TemporaryDirectory(prefix="onnxbridge-variants-") as tmp:
        work = Path(tmp)
        for name, fn in (("bert", bench_bert), ("cnn", bench_cnn), ("lm", bench_lm)):
            if name in args.only.split(","):
                t0 = time.perf_counter()
                result[name] = fn(work)
                result[name]["seconds"] = time.perf_counter() - t0
                print(f"{name} done in {result[name]['seconds']:.0f} s, load {load()}", flush=True)
                write(args.out, result)  # after each model: a long run that dies later keeps what it measured
    result["machine"]["load_at_end"] = load()
    write(args.out, result)
    table = [
        "| model | variant | size | p50 ms | vs fp32 ORT | vs eager | accuracy vs reference | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    if "bert" in result:
        table += rows("BERT-base b1 s128", result["bert"]["variants"])
    if "cnn" in result:
        table += rows("ResNet-50 b1 224", result["cnn"]["resnet50"])
        table += rows("trained small ResNet b1 64", result["cnn"]["trained"])
    if "lm" in result:
        table += rows("Llama-style LM b1 s128", result["lm"]["variants"])
    print("\n".join(table))
    for name in ("bert", "lm"):
        if name in result:
            best = min(result[name]["eager_p50_ms_by_threads"].values())
            fastest = min(
                (x for x in result[name]["variants"]["variants"] if x["status"] == "passed"),
                key=lambda x: x["latency"]["p50"],
                default=None,
            )
            print(
                f"{name}: eager p50 by torch threads {result[name]['eager_p50_ms_by_threads']} ms; fastest passing "
                f"variant {fastest['kind'] if fastest else '-'} vs the best eager: "
                + (f"{best / fastest['latency']['p50']:.2f}x" if fastest else "-")
            )
    if "cnn" in result:
        print(
            f"ResNet-50 distinct fp32 classes over the judging images: {result['cnn']['resnet50']['distinct_fp32_classes']}; "
            f"trained CNN fp32 label accuracy {result['cnn']['trained']['fp32_label_accuracy']:.3f}"
        )
    print(
        f"load average: start {result['machine']['load_at_start']}, end {result['machine']['load_at_end']}; "
        f"JSON: {args.out}"
    )


if __name__ == "__main__":
    main()
