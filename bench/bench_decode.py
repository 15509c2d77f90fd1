"""Prefill latency and decode tokens/s of a with-past decoder on ONNX Runtime (fp32, and int4 MatMulNBits)
against transformers with its cache, on a ~125M-parameter random Llama-style decoder (12 layers, hidden 768,
vocab 32000), prompt 128, 64 new tokens, batch 1 and 4; every side interleaved trial by trial.

    .venv/bin/python bench/bench_decode.py [--trials 3] [--threads N] [--no-int4] [--genai] [--json bench/results/decode.json]

Builds the folder once under --work (default a temporary folder), converts it with onnxbridge (generation
parity included), writes the int4 copy (block size 128, asymmetric, accuracy level 4), then runs
``onnxbridge.generation.bench.bench_decoder``: one table, the ratios, and the JSON. ``--genai`` adds ONNX
Runtime GenAI's int4 build (variant ``genai-int4``), timed through onnxbridge's loop and through its own
Generator.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG = {
    "hidden_size": 768,
    "intermediate_size": 2048,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "num_key_value_heads": 12,
    "vocab_size": 32000,
    "max_position_embeddings": 2048,
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
}


def build(src: Path) -> int:
    """Save the random decoder under ``src`` (once); returns its parameter count."""
    import torch
    import transformers as tf

    if not (src / "config.json").is_file():
        torch.manual_seed(0)
        model = tf.LlamaForCausalLM(tf.LlamaConfig(**CONFIG))
        model.generation_config = tf.GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=0)
        model.save_pretrained(src)
    model = tf.AutoModelForCausalLM.from_pretrained(src)
    return sum(p.numel() for p in model.parameters())


def genai_int4(src: Path, out: Path) -> Path:
    """ONNX Runtime GenAI's int4 CPU build of ``src`` under ``out`` (once; its builder needs a tokenizer:
    a word-level one over the vocabulary is saved beside the weights when the folder has none)."""
    import shutil

    from onnxbridge.generation.genai import build_genai

    if (out / "model.onnx").is_file():
        return out
    if not (src / "tokenizer.json").is_file():
        from tokenizers import Tokenizer, models, pre_tokenizers
        from transformers import PreTrainedTokenizerFast

        vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i for i in range(3, CONFIG["vocab_size"])}}
        tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        PreTrainedTokenizerFast(
            tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>"
        ).save_pretrained(src)
    t0 = time.perf_counter()
    scratch = out.parent / f".{out.name}.build"
    built = build_genai(src, scratch, precision="int4")
    if not built.ok:
        raise SystemExit(f"GenAI int4 build failed: {built.error}")
    out.mkdir(parents=True, exist_ok=True)
    for f in built.files:
        shutil.move(str(f), out / f.name)
    shutil.copy2(src / "config.json", out / "config.json")
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"GenAI int4 build (MatMulNBits, GroupQueryAttention) in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def int4_accuracy(work: Path, block_size: int) -> dict[str, float]:
    """The int4 copy of a char-level LM trained here on the bundled text, judged on generation by
    ``onnxbridge variant OUT_DIR --to int4`` (its defaults: 8 prompts x 64 greedy tokens)."""
    import onnxbridge
    from onnxbridge.generation.quantize import BLOCK_SIZE
    from tests.generation.charlm import train_charlm

    if block_size != BLOCK_SIZE:
        print(f"note: the variant command quantises with block size {BLOCK_SIZE}", flush=True)
    lm = train_charlm(work)
    (work / "variants").mkdir(exist_ok=True)
    report = onnxbridge.variant(lm.fp32, "int4", out_dir=work / "variants", new_tokens=64, prompts=8)
    assert report.variants is not None
    judged = next(v for v in report.variants.variants if v.kind == "int4")
    g = judged.generation
    assert g is not None
    print(
        f"int4 on the trained char LM ({judged.status.value}): token agreement {g.token_agreement:.3f} over "
        f"{g.prompts} prompts x {g.new_tokens} tokens, relative logit drift {g.logit_drift:.3f}, perplexity "
        f"{g.perplexity:.3f} vs fp32 {g.perplexity_fp32:.3f} (ratio {g.perplexity_ratio:.3f})",
        flush=True,
    )
    return {
        "token_agreement": g.token_agreement,
        "prompts": g.prompts,
        "new_tokens": g.new_tokens,
        "logit_drift": g.logit_drift,
        "perplexity_ratio": g.perplexity_ratio,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompt-length", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch", default="1,4")
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--block-size", type=int, default=128)
    ap.add_argument("--no-int4", action="store_true")
    ap.add_argument("--genai", action="store_true", help="also ONNX Runtime GenAI's int4 build (the genai extra)")
    ap.add_argument("--accuracy", action="store_true", help="also int4 accuracy on a char-level LM trained here")
    ap.add_argument("--work", type=Path, default=None, help="keep the folders here (reused by a later run)")
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "decode.json")
    args = ap.parse_args()

    import onnxbridge
    from onnxbridge.generation.bench import DecodeBenchConfig, bench_decoder
    from onnxbridge.generation.quantize import quantize_folder
    from onnxbridge.results import to_plain

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_decode_"))
    src, fp32, int4 = work / "src", work / "fp32", work / "int4"
    params = build(src)
    print(
        f"random Llama-style decoder: {params / 1e6:.1f}M parameters ({CONFIG['num_hidden_layers']} layers, hidden "
        f"{CONFIG['hidden_size']}, vocab {CONFIG['vocab_size']})",
        flush=True,
    )
    t0 = time.perf_counter()
    if not (fp32 / "model.onnx").is_file():
        report = onnxbridge.convert(src, fp32, new_tokens=8)
        print(
            f"converted in {time.perf_counter() - t0:.0f} s; generation parity: {report.generation.summary()}",
            flush=True,
        )
    variants, quant = {}, None
    if not args.no_int4:
        quant = quantize_folder(fp32, int4, "int4", block_size=args.block_size)
        variants["int4"] = quant.folder
        print(f"int4: {quant.settings} -> {quant.quantized_ops}", flush=True)
    if args.genai:
        variants["genai-int4"] = genai_int4(src, work / "genai-int4")
    load_before = os.getloadavg()
    config = DecodeBenchConfig(
        args.prompt_length,
        tuple(int(b) for b in args.batch.split(",")),
        args.new_tokens,
        args.trials,
        args.threads,
        "cpu",
    )
    result = bench_decoder(fp32, config, source=src, variants=variants, progress=lambda m: print(m, flush=True))
    load_after = os.getloadavg()

    print(
        f"\nprompt {result.prompt_length}, {result.new_tokens} new tokens, {result.provider}, medians of "
        f"{args.trials} interleaved trials; load average {load_before[0]:.1f} -> {load_after[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )
    print(f"{'side':34} {'batch':>5} {'prefill ms':>11} {'decode tok/s':>13} {'peak RSS MiB':>13}")
    for r in result.rows:
        side = f"{r.runtime} {r.variant if r.runtime != 'transformers' else ''} {r.mode}".replace("  ", " ")
        print(
            f"{side:34} {r.batch:>5} {r.prefill_ms:>11.1f} {r.decode_tokens_per_s:>13.1f} "
            f"{r.peak_rss_bytes / 2**20:>13.0f}"
        )
    for v in result.variants:
        for b in result.batches:
            print(
                f"ORT {v} (best mode {result.best_ort(b, v).mode}) vs transformers, batch {b}: decode "
                f"{result.decode_speedup(b, v):.2f}x, prefill {result.prefill_speedup(b, v):.2f}x"
            )
    print("same greedy tokens (fp32 ORT vs transformers):", dict(zip(result.batches, result.same_tokens)))
    accuracy = int4_accuracy(work / "charlm", args.block_size) if args.accuracy else None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": {
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "load_average_before": load_before,
                    "load_average_after": load_after,
                },
                "model": {"parameters": params, **CONFIG},
                "int4": None if quant is None else {"settings": quant.settings, "quantized_ops": quant.quantized_ops},
                "decode_bench": to_plain(result),
                "int4_accuracy_on_trained_charlm": accuracy,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written: {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
