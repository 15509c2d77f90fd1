"""Wall time of ``onnxbridge convert`` against ``optimum-cli export onnx``, the same steps by hand, and a
hand-written ``torch.onnx.export``.

Tiny random-weight Hugging Face folders (bert, gpt2, t5, whisper, wav2vec2, vit, llama) are built once with
transformers and ``save_pretrained``; then, round after round, each folder is converted by every tool in turn
(interleaved, each as a fresh process, as a user runs it), so that a noisy machine slows all tools alike.
``by_hand`` is onnxbridge's own steps written as a plain script (TorchScript export, onnxsim, the cases onnxbridge
ran, from its report, on one ONNX Runtime session and the source): onnxbridge / by_hand is its overhead.

    .venv/bin/python bench/bench_convert.py [--optimum-venv PATH] [--rounds 3] [--model bert --model gpt2 ...]
                                            [--warm] [--onnxbridge-arg=--no-simplify ...] [--json OUT.json]

Every ``onnxbridge`` run is cold: a cache folder of its own (``ONNXBRIDGE_CACHE_DIR``), so nothing a previous run
kept is read back. ``--warm`` adds ``onnxbridge_warm``: the same convert with the cache an untimed convert of the
same folder filled first (the torch.export probe's answers: a second convert of one architecture, as in CI), its
ratios printed apart. The JSON records the versions of torch, transformers, onnx, ml_dtypes and onnxruntime in
each tool's environment.

optimum-onnx pins an older transformers, so it lives in a venv of its own (``--optimum-venv``: the folder holding
``bin/optimum-cli``); without it only the torch floor is compared. Prints per-model medians and ratios
(onnxbridge / optimum, onnxbridge / torch floor) and their median over the set, and, with ``--json``, every
figure, including the cases onnxbridge checked per model (optimum checks one shape).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# model -> (optimum task, the inputs the torch floor feeds, by model type)
MODELS: dict[str, str] = {
    "bert": "text-classification",
    "gpt2": "text-generation",
    "t5": "text2text-generation",
    "whisper": "automatic-speech-recognition",
    "wav2vec2": "feature-extraction",
    "vit": "image-classification",
    "llama": "text-generation",
}


def _build(name: str, folder: Path) -> Path:
    """A tiny random-weight folder of one family, saved as a user's fine-tune would be."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    text = dict(vocab_size=128, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    if name == "bert":
        model = tf.BertForSequenceClassification(tf.BertConfig(**text, max_position_embeddings=64, num_labels=3))
    elif name == "gpt2":
        model = tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=128, n_embd=32, n_layer=2, n_head=4, n_positions=64))
    elif name == "llama":
        model = tf.LlamaForCausalLM(tf.LlamaConfig(**text, num_key_value_heads=2, max_position_embeddings=64))
    elif name == "t5":
        model = tf.T5ForConditionalGeneration(
            tf.T5Config(
                vocab_size=128, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, decoder_start_token_id=0
            )
        )
    elif name == "whisper":
        model = tf.WhisperForConditionalGeneration(
            tf.WhisperConfig(
                vocab_size=100,
                num_mel_bins=16,
                encoder_layers=1,
                decoder_layers=1,
                encoder_attention_heads=2,
                decoder_attention_heads=2,
                d_model=32,
                encoder_ffn_dim=64,
                decoder_ffn_dim=64,
                max_source_positions=20,
                max_target_positions=32,
                pad_token_id=0,
                bos_token_id=1,
                eos_token_id=2,
                decoder_start_token_id=1,
            )
        )
        tf.WhisperFeatureExtractor(feature_size=16, chunk_length=1, hop_length=400).save_pretrained(folder)
    elif name == "wav2vec2":
        model = tf.Wav2Vec2Model(
            tf.Wav2Vec2Config(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=64,
                conv_dim=(16, 16),
                conv_stride=(5, 4),
                conv_kernel=(10, 4),
                num_conv_pos_embeddings=16,
                num_conv_pos_embedding_groups=4,
            )
        )
        tf.Wav2Vec2FeatureExtractor().save_pretrained(folder)
    elif name == "vit":
        model = tf.ViTForImageClassification(
            tf.ViTConfig(
                image_size=32,
                patch_size=8,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=64,
                num_labels=5,
            )
        )
        tf.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    else:
        raise SystemExit(f"unknown model {name!r}: one of {', '.join(MODELS)}")
    model.save_pretrained(folder)
    return folder


def _floor_inputs(model_type: str, config) -> dict:
    """The example a person writing ``torch.onnx.export`` by hand would pass, at one shape."""
    import torch

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 100, (2, 8), generator=g)
    mask = torch.ones_like(ids)
    if model_type in ("bert", "gpt2", "llama"):
        return {"input_ids": ids, "attention_mask": mask}
    if model_type == "t5":
        return {"input_ids": ids, "attention_mask": mask, "decoder_input_ids": ids[:, :4]}
    if model_type == "whisper":
        frames = 2 * config.max_source_positions
        return {
            "input_features": torch.randn(2, config.num_mel_bins, frames, generator=g),
            "decoder_input_ids": ids[:, :4],
        }
    if model_type == "wav2vec2":
        return {"input_values": torch.randn(2, 1600, generator=g)}
    if model_type == "vit":
        return {"pixel_values": torch.randn(2, 3, config.image_size, config.image_size, generator=g)}
    raise SystemExit(f"no floor inputs for {model_type}")


def floor(folder: Path, out: Path) -> None:
    """``torch.onnx.export`` by hand, as its docs show: load, one example, export. The least any tool does."""
    import torch
    import transformers

    config = transformers.AutoConfig.from_pretrained(folder)
    config.use_cache = False
    model = getattr(transformers, config.architectures[0]).from_pretrained(folder, config=config).eval()
    kwargs = _floor_inputs(config.model_type, config)
    torch.onnx.export(model, (), str(out), kwargs=kwargs, dynamo=True)


def _hand_inputs(names: list[str], shapes: dict[str, list[int]], vocab: int, seed: int) -> dict:
    """Inputs a person would write for one case: ids below the vocabulary, masks of ones, zero token types,
    floats from a normal distribution (dtypes guessed from the names, as one does by hand)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    out = {}
    for n in names:
        shape = shapes[n]
        if "mask" in n:
            out[n] = torch.ones(shape, dtype=torch.int64)
        elif "token_type" in n:
            out[n] = torch.zeros(shape, dtype=torch.int64)
        elif n.endswith("_ids"):
            out[n] = torch.randint(3, vocab, shape, generator=g)
        else:
            out[n] = torch.randn(shape, generator=g)
    return out


def by_hand(folder: Path, out: Path, cases_file: Path) -> None:
    """The steps ``onnxbridge convert`` takes, written as a plain script: load, export with the TorchScript
    exporter (the route onnxbridge picks for these folders) with every axis dynamic, simplify with onnxsim,
    then run each case onnxbridge ran (the shapes, from its report) on one ONNX Runtime session and on the
    source, and compare. What it leaves out: finding the cases (the exported range of each axis, from a
    torch.export probe), the route checks, the report."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import onnxsim
    import torch
    import transformers

    spec = json.loads(cases_file.read_text())
    names, cases = spec["inputs"], spec["cases"]
    config = transformers.AutoConfig.from_pretrained(folder)
    config.use_cache = False
    model = getattr(transformers, config.architectures[0]).from_pretrained(folder, config=config).eval()
    vocab = min(getattr(config, "vocab_size", 100) or 100, 100)

    class Positional(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *tensors):
            return self.inner(**dict(zip(names, tensors)), return_dict=False)

    example = _hand_inputs(names, cases[0], vocab, 0)
    # an axis is dynamic where the cases vary it
    dynamic = {n: {i: f"{n}_{i}" for i in range(example[n].dim()) if len({c[n][i] for c in cases}) > 1} for n in names}
    for dynamo in (False, True):  # TorchScript first, then dynamo where it fails (whisper: aten::diff), as onnxbridge
        try:
            torch.onnx.export(
                Positional().eval(),  # export leaves the wrapper's mode on the model: a fresh module trains
                tuple(example.values()),
                str(out),
                dynamo=dynamo,
                input_names=names,
                **(
                    {"dynamic_shapes": (tuple({i: torch.export.Dim.AUTO for i in dynamic[n]} or None for n in names),)}
                    if dynamo
                    else {"dynamic_axes": dynamic}
                ),
            )
            break
        except Exception:
            if dynamo:
                raise
    simplified, ok = onnxsim.simplify(onnx.load(str(out)))
    if ok:
        onnx.save(simplified, str(out))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    passed = 0
    for i, shapes in enumerate(cases):
        feeds = _hand_inputs(names, shapes, vocab, i)
        try:
            with torch.inference_mode():
                want = [t.numpy() for t in torch.utils._pytree.tree_leaves(model(**feeds, return_dict=False))]
        except Exception:  # past the model's range: onnxbridge reports these too
            continue
        got = session.run(None, {n: v.numpy() for n, v in feeds.items()})
        passed += all(np.allclose(g, w, atol=1e-4, rtol=1e-3) for g, w in zip(got, want))
    print(json.dumps({"cases": len(cases), "passed": passed}))


def _run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, str, str]:
    """Wall seconds, CPU seconds (user + system of the child and its children: steadier than wall time on a
    machine other work loads), exit code, stdout, and the tail of stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode, done.stdout, done.stderr[-2000:]


def _tools(args: argparse.Namespace, cases_dir: Path) -> dict[str, Callable[[str, Path, Path], list[str]]]:
    python = sys.executable
    tools: dict[str, Callable[[str, Path, Path], list[str]]] = {
        "onnxbridge": lambda name, folder, out: [
            python,
            "-m",
            "onnxbridge",
            "convert",
            str(folder),
            "-o",
            str(out / "model.onnx"),
            "--json",
            *args.onnxbridge_arg,
        ],
        "by_hand": lambda name, folder, out: [
            python,
            str(Path(__file__).resolve()),
            "--by-hand",
            str(folder),
            str(out / "model.onnx"),
            str(cases_dir / f"{name}.json"),
        ],
        "torch_floor": lambda name, folder, out: [
            python,
            str(Path(__file__).resolve()),
            "--floor",
            str(folder),
            str(out / "model.onnx"),
        ],
    }
    if args.warm:
        tools["onnxbridge_warm"] = tools["onnxbridge"]
    if args.optimum_venv:
        cli = Path(args.optimum_venv) / "bin" / "optimum-cli"
        if not cli.exists():
            raise SystemExit(f"{cli} not found: --optimum-venv is the venv folder holding bin/optimum-cli")
        tools["optimum"] = lambda name, folder, out: [
            str(cli),
            "export",
            "onnx",
            "--model",
            str(folder),
            "--task",
            MODELS[name],
            str(out),
        ]
    return tools


def _report(stdout: str) -> dict:
    """onnxbridge's --json report on stdout ({} when it cannot be read)."""
    try:
        return json.loads(stdout[stdout.find("{") :])
    except json.JSONDecodeError:
        return {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--floor", nargs=2, metavar=("FOLDER", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--by-hand", nargs=3, metavar=("FOLDER", "OUT", "CASES"), help=argparse.SUPPRESS)
    ap.add_argument("--optimum-venv", help="a venv with optimum-onnx installed (bin/optimum-cli)")
    ap.add_argument("--model", action="append", choices=list(MODELS), help="default: every model")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--onnxbridge-arg", action="append", default=[], help="extra convert flag, e.g. --no-simplify")
    ap.add_argument("--warm", action="store_true", help="also time onnxbridge with its cache filled (onnxbridge_warm)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.floor:
        floor(Path(args.floor[0]), Path(args.floor[1]))
        return 0
    if args.by_hand:
        by_hand(*map(Path, args.by_hand))
        return 0
    names = args.model or list(MODELS)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("ONNXBRIDGE_NO_CACHE", None)
    tmp_root = Path(tempfile.mkdtemp(prefix="bench_convert_"))
    tools = _tools(args, tmp_root / "cases")
    rows: dict[str, dict] = {
        n: {t: [] for t in tools}
        | {
            "cpu": {t: [] for t in tools},
            "errors": {},
            "cases": None,
            "by_hand_cases_passed": None,
            "onnxbridge_timings": [],
            "route": None,
        }
        for n in names
    }
    try:
        root = tmp_root
        (root / "cases").mkdir()
        folders = {n: _build(n, root / "src" / n) for n in names}
        warm_cache = {n: root / "warm_cache" / n for n in names}
        if args.warm:  # fill each folder's cache once, untimed
            for n in names:
                out = root / "out" / f"{n}-prime"
                out.mkdir(parents=True)
                _run(tools["onnxbridge"](n, folders[n], out), {**env, "ONNXBRIDGE_CACHE_DIR": str(warm_cache[n])})
        for r in range(args.rounds):
            for n in names:
                order = list(tools) if r % 2 == 0 else list(reversed(tools))  # who runs first alternates
                for t in order:
                    out = root / "out" / f"{n}-{t}-{r}"
                    out.mkdir(parents=True)
                    own = env
                    if t.startswith("onnxbridge"):  # cold: a cache of its own; warm: the one filled above
                        cache = warm_cache[n] if t == "onnxbridge_warm" else out / "cache"
                        own = {**env, "ONNXBRIDGE_CACHE_DIR": str(cache)}
                    seconds, cpu, rc, stdout, stderr = _run(tools[t](n, folders[n], out), own)
                    if rc != 0:
                        rows[n]["errors"][t] = f"exit {rc}: {(stdout + stderr)[-400:]}"
                        continue
                    rows[n][t].append(seconds)
                    rows[n]["cpu"][t].append(cpu)
                    if t == "onnxbridge":
                        report = _report(stdout)
                        rows[n]["cases"] = len(report.get("validation", {}).get("cases", [])) or None
                        rows[n]["onnxbridge_timings"].append(report.get("timings"))
                        rows[n]["route"] = report.get("route")
                        cases = [c["shapes"] for c in report.get("validation", {}).get("cases", [])]
                        (root / "cases" / f"{n}.json").write_text(
                            json.dumps({"inputs": report.get("inputs", []), "cases": cases})
                        )
                    elif t == "onnxbridge_warm":
                        rows[n].setdefault("onnxbridge_warm_timings", []).append(_report(stdout).get("timings"))
                    elif t == "by_hand":
                        last = stdout.strip().splitlines()[-1:] or ["{}"]  # exporters print on stdout too
                        rows[n]["by_hand_cases_passed"] = _report(last[0]).get("passed")
                print(
                    f"round {r + 1}/{args.rounds} {n}: "
                    + ", ".join(
                        f"{t} {rows[n][t][-1]:.1f}s ({rows[n]['cpu'][t][-1]:.1f} cpu s)"
                        if rows[n][t] and len(rows[n][t]) == r + 1
                        else f"{t} failed"
                        for t in tools
                    ),
                    flush=True,
                )
                if args.json:  # after every model, so that an interrupted run keeps what it measured
                    _write(args, rows, None)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    summary = _summarize(rows, tools)
    if args.json:
        _write(args, rows, summary)
    return 0


def _write(args: argparse.Namespace, rows: dict[str, dict], summary: dict | None) -> None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "load_average": os.getloadavg(),
                "rounds": args.rounds,
                "onnxbridge_args": args.onnxbridge_arg,
                "versions": _versions(args),
                "models": rows,
                "summary": summary,
            },
            indent=2,
        )
    )


_VERSIONS = """
import importlib.metadata as m, json
out = {}
for d in ("torch", "transformers", "onnx", "ml_dtypes", "onnxruntime", "onnxruntime-gpu", "optimum-onnx"):
    try:
        out[d] = m.version(d)
    except m.PackageNotFoundError:
        pass
print(json.dumps(out))
"""


def _versions(args: argparse.Namespace) -> dict[str, dict[str, str]]:
    """The versions that set each tool's import and export time, per environment."""
    pythons = {"onnxbridge": sys.executable}
    if args.optimum_venv:
        pythons["optimum"] = str(Path(args.optimum_venv) / "bin" / "python")
    out = {}
    for tool, python in pythons.items():
        done = subprocess.run([python, "-c", _VERSIONS], capture_output=True, text=True)
        out[tool] = json.loads(done.stdout) if done.returncode == 0 else {}
    return out


def _summarize(rows: dict[str, dict], tools) -> dict:
    """Per-model medians and ratios, printed as a table; the median ratio over the set."""
    ratios: dict[str, list[float]] = {t: [] for t in tools if not t.startswith("onnxbridge")}
    print(
        f"\n{'model':10} {'cases':>5} "
        + " ".join(f"{t + ' s':>13}" for t in tools)
        + " "
        + " ".join(f"{'x ' + t:>13}" for t in ratios)
    )
    for n, row in rows.items():
        med = {t: statistics.median(row[t]) if row[t] else None for t in tools}
        row["median_s"] = med
        row["ratio"] = {}
        for t in ratios:
            if med["onnxbridge"] and med[t]:
                row["ratio"][t] = med["onnxbridge"] / med[t]
                ratios[t].append(row["ratio"][t])
        print(
            f"{n:10} {row['cases'] or '-':>5} "
            + " ".join(f"{med[t]:13.2f}" if med[t] else f"{'failed':>13}" for t in tools)
            + " "
            + " ".join(f"{row['ratio'][t]:13.2f}" if t in row["ratio"] else f"{'-':>13}" for t in ratios)
        )
    cpu_ratios: dict[str, list[float]] = {t: [] for t in ratios}
    for n, row in rows.items():
        cpu = {t: statistics.median(row["cpu"][t]) if row["cpu"][t] else None for t in tools}
        row["median_cpu_s"] = cpu
        row["cpu_ratio"] = {t: cpu["onnxbridge"] / cpu[t] for t in ratios if cpu["onnxbridge"] and cpu[t]}
        for t, v in row["cpu_ratio"].items():
            cpu_ratios[t].append(v)
        print(
            f"{n:10} cpu s: "
            + ", ".join(f"{t} {cpu[t]:.1f}" for t in tools if cpu[t])
            + "; cpu ratio "
            + ", ".join(f"x {t} {v:.2f}" for t, v in row["cpu_ratio"].items())
        )
    out = {f"median_ratio_vs_{t}": statistics.median(v) for t, v in ratios.items() if v}
    out |= {f"max_ratio_vs_{t}": max(v) for t, v in ratios.items() if v}
    out |= {f"median_cpu_ratio_vs_{t}": statistics.median(v) for t, v in cpu_ratios.items() if v}
    out |= {f"max_cpu_ratio_vs_{t}": max(v) for t, v in cpu_ratios.items() if v}
    if "onnxbridge_warm" in tools:  # the warm arm against the others, apart from the cold figures
        warm: dict[str, list[float]] = {t: [] for t in ratios}
        for row in rows.values():
            med = row["median_s"]
            row["warm_ratio"] = {
                t: med["onnxbridge_warm"] / med[t] for t in ratios if med["onnxbridge_warm"] and med[t]
            }
            for t, v in row["warm_ratio"].items():
                warm[t].append(v)
        out |= {f"warm_median_ratio_vs_{t}": statistics.median(v) for t, v in warm.items() if v}
        out |= {f"warm_max_ratio_vs_{t}": max(v) for t, v in warm.items() if v}
    for k, v in out.items():
        print(f"{k}: {v:.2f}")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
