"""``convert FOLDER -o OUT_DIR --task text-generation-with-past``: load the causal LM with its cache,
export it (:mod:`.export`), write optimum's folder layout with the configs and tokenizer files beside
the graph, and judge generation token by token (:mod:`.parity`)."""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from .._util import Progress, first_line, no_progress, quiet
from ..errors import InputError, UsageError
from ..results import ConversionResult, Report
from .lm_source import LmSource, auto_map_files, is_python_source, load_python_lm, write_source_files

__all__ = [
    "FOLDER_FILES",
    "WITH_PAST_ROUTES",
    "cache_debug_command",
    "convert_with_past",
    "load_causal_lm",
    "load_lm_source",
    "validate_with_past",
]

# --route for a decoder with its cache, tried in this order by default: the exporters, then ONNX Runtime
# GenAI's model builder (a lost route "not installed" without the genai extra)
WITH_PAST_ROUTES = ("torchscript", "torch.export/dynamo", "genai")

# copied beside model.onnx when the source folder has them
FOLDER_FILES = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
    "chat_template.jinja",
    "chat_template.json",
    "preprocessor_config.json",
)


def load_causal_lm(path: Path, trust: bool = False, seq2seq: bool = False, speech: bool = False) -> Any:
    """The folder's causal LM (or sequence-to-sequence LM) in float32, eval mode, with its cache on;
    offline, safetensors unless trusted."""
    from ..converters.hf_folder import offline, read_folder

    folder = read_folder(path, trust=trust)
    if folder.config.get("auto_map") and not trust:
        raise UsageError(
            f"{path}: config.json's auto_map names the folder's own modeling code",
            "pass --trust-model if you trust the folder",
        )
    with offline():
        import torch
        import transformers

        auto = (
            transformers.AutoModelForSpeechSeq2Seq
            if speech
            else transformers.AutoModelForSeq2SeqLM
            if seq2seq
            else transformers.AutoModelForCausalLM
        )
        try:
            with quiet():
                model = auto.from_pretrained(
                    path,
                    local_files_only=True,
                    use_safetensors=folder.safetensors,
                    dtype=torch.float32,
                    trust_remote_code=trust,
                )
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
            kind = "sequence-to-sequence" if seq2seq else "causal"
            raise InputError(
                f"{path}: transformers could not load a {kind} LM ({first_line(e, 300)})",
                "check config.json and the weights; a with-past task needs an LM head",
            ) from e
    model.config.use_cache = True
    return model.eval()


def load_lm_source(source: str, trust: bool, *, seq2seq: bool = False, speech: bool = False) -> LmSource:
    """The LM behind SOURCE: a Hugging Face folder's, or a Python source's (only a causal LM;
    ``trust`` is for a folder's own code)."""
    if not is_python_source(source):
        return LmSource(load_causal_lm(Path(source), trust, seq2seq=seq2seq, speech=speech), Path(source))
    if seq2seq or speech:
        raise UsageError(
            f"{source}: a with-past encoder-decoder is exported from a Hugging Face folder only",
            "save the model with save_pretrained and convert that folder",
        )
    return load_python_lm(source)


def _out_dir(output: str | Path, source: Path) -> Path:
    out = Path(output).expanduser()
    if out.resolve() == source.resolve():
        raise UsageError(f"output folder {out} is the source folder", "choose another -o folder")
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {out} is a file", "give -o a folder for a with-past export")
    if out.is_dir() and any(out.iterdir()) and not any((out / n).is_file() for n in _PRODUCTS):
        raise UsageError(f"output folder {out} is not empty", "give a new or empty folder (or a previous output)")
    if not out.parent.is_dir():
        raise InputError(f"output directory {out.parent} does not exist", f"create it first (mkdir -p {out.parent})")
    return out


_PRODUCTS = ("model.onnx", "encoder_model.onnx")


def _pad_id(model: Any) -> int:
    g = model.generation_config
    for v in (g.pad_token_id, g.eos_token_id, model.config.get_text_config().pad_token_id):
        if isinstance(v, list):
            v = v[0] if v else None
        if isinstance(v, int):
            return v
    return 0


def convert_with_past(
    source: str,
    output: str | Path,
    options: Any,
    progress: Progress | None = None,
    *,
    task: str = "text-generation-with-past",
) -> Report:
    """The with-past export of a causal-LM (or, for ``text2text-generation-with-past``, an encoder-decoder)
    folder into ``output``, with generation parity unless ``options.validate`` is off. ``options``:
    :class:`~onnxbridge.options.ConvertOptions`."""
    if task != "text-generation-with-past":
        return _convert_seq2seq(source, output, options, progress, speech=task.startswith("automatic-speech"))
    say = progress or no_progress
    src = Path(source)
    out = _out_dir(output, src)
    timings: dict[str, float] = {}
    say(f"loading {source}")
    t0 = time.perf_counter()
    lm = load_lm_source(source, options.export.trust_model)
    model = lm.model
    timings["load_s"] = time.perf_counter() - t0
    scratch = out.parent / f".{out.name}.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        say("exporting with the KV cache")
        exported, generation = _export_routes(model, src, scratch, options)
        timings["export_s"] = exported.seconds
        copied = _copy_folder_files(lm.folder, scratch, model) if lm.folder else write_source_files(lm, scratch)
        _publish(scratch, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if generation is not None:
        timings["validate_s"] = generation.seconds
    elif options.validate:
        say(f"generating {options.new_tokens} tokens per prompt through {out / 'model.onnx'} and the source")
        generation = _generation(
            model, out, options.parity, options.new_tokens, debug=(source, options.export.trust_model)
        )
        timings["validate_s"] = generation.seconds
    layout = exported.layout
    conversion = ConversionResult(
        framework="huggingface",
        route=exported.route,
        attempts=exported.attempts,
        opset=exported.opset,
        input_names=layout.input_names,
        output_names=layout.output_names,
        seconds=exported.seconds,
        notes=(
            f"task text-generation-with-past: {layout.layers} layers, kv heads "
            f"{sorted({k.heads for k in layout.keys})}, head_dim {sorted({k.head_dim for k in layout.keys})}"
            + ("" if layout.position_ids else ", no position_ids (the model does not take them)")
            + (
                "; ONNX Runtime GenAI's graph (GroupQueryAttention: rows right-padded, genai_config.json beside it)"
                if layout.padding == "right"
                else ""
            ),
            f"copied beside model.onnx: {', '.join(copied)}",
        ),
    )
    return _report("convert", source, out, timings, generation, conversion)


def _export_routes(model: Any, src: Path, scratch: Path, options: Any) -> tuple[Any, Any]:
    """(the winning :class:`~.export.ExportedDecoder`, the generation verdict that judged it when the route
    was judged on generation) of the first route in ``--route`` order (default :data:`WITH_PAST_ROUTES`)
    that passes: the exporters' routes checked against the model in PyTorch, the GenAI builder's on
    generation parity."""
    import itertools

    from ..errors import ConversionError
    from .export import ExportedDecoder, export_with_past
    from .genai import ROUTE, genai_route

    routes = options.export.routes or WITH_PAST_ROUTES
    unknown = [r for r in routes if r not in WITH_PAST_ROUTES]
    if unknown:
        raise UsageError(
            f"unknown --route {unknown[0]!r} for a with-past export", f"routes: {', '.join(WITH_PAST_ROUTES)}"
        )
    attempts: list[Any] = []
    reasons: list[str] = []
    t0 = time.perf_counter()
    for is_genai, group in itertools.groupby(routes, key=lambda r: r == ROUTE):
        if is_genai:
            check = (lambda d: _generation(model, d, options.parity, options.new_tokens)) if options.validate else None
            got = genai_route(src, scratch, check)
            attempts.append(got.attempt)
            if got.layout is not None:
                done = ExportedDecoder(
                    ROUTE, tuple(attempts), scratch / "model.onnx", got.layout, got.opset, time.perf_counter() - t0
                )
                return done, got.generation
            continue
        try:
            exported = export_with_past(
                model,
                scratch / "model.onnx",
                opset=options.export.opset or 18,
                routes=tuple(group),
                debug=options.export.debug,
            )
        except ConversionError as e:
            attempts += e.attempts
            reasons += [] if e.attempts else [e.message]
            continue
        return replace(exported, attempts=(*attempts, *exported.attempts), seconds=time.perf_counter() - t0), None
    lines = "; ".join([*reasons, *(f"{a.route}: {a.error}" for a in attempts)])
    raise ConversionError(
        f"no route exported {type(model).__name__} with its KV cache ({lines})",
        "try --task text-generation (no cache), or --debug for the exporters' output",
        attempts=tuple(attempts),
    )


def _report(
    command: str,
    source: str,
    out: str | Path,
    timings: dict[str, float],
    generation: Any,
    conversion: ConversionResult | None = None,
) -> Report:
    """The report of a with-past convert or validate: the folder, its generation verdict and its notes."""
    return Report(
        command=command,
        source=source,
        framework="huggingface",
        output=str(out),
        conversion=conversion,
        timings=timings,
        notes=_generation_notes(generation),
        generation=generation,
    )


def _generation_notes(generation: Any) -> tuple[str, ...]:
    if generation is None:
        return ()
    return (
        (
            "generation parity: plain greedy (do_sample=False, no end-of-sequence stop, no logits processors), "
            f"prompts of lengths {[len(r.prompt) for r in generation.rows]} left-padded in one batch, then the "
            "first alone"
        ),
    )


def _generation(model: Any, out: Path, parity: Any, new_tokens: int, *, debug: tuple[str, bool] | None = None) -> Any:
    """Generation parity of ``out`` against ``model``; a decoder's failure carries the ``debug`` command
    that localises it (``debug``: the SOURCE as given and whether it was trusted)."""
    from .parity import generation_parity
    from .seq2seq_loop import is_seq2seq_folder, seq2seq_parity

    provider = parity.provider if parity.provider != "auto" else "cpu"
    if is_seq2seq_folder(out):
        return seq2seq_parity(
            model, out, new_tokens=new_tokens, pad=_pad_id(model), provider=provider, seed=parity.seed
        )
    verdict = generation_parity(
        model, out, new_tokens=new_tokens, pad=_pad_id(model), provider=provider, seed=parity.seed
    )
    if verdict.passed or debug is None:
        return verdict
    command = cache_debug_command(debug[0], out, trust=debug[1], new_tokens=new_tokens, parity=parity)
    return dataclasses.replace(verdict, debug_command=command)


def cache_debug_command(source: str, out: str | Path, *, trust: bool, new_tokens: int, parity: Any) -> str:
    """``onnxbridge debug SOURCE OUT_DIR ...``: the replay that names the first diverging cache layer."""
    import shlex

    args = ["onnxbridge", "debug", str(source), str(out)]
    if trust:
        args.append("--trust-model")
    if new_tokens != 32:
        args += ["--new-tokens", str(new_tokens)]
    if parity.provider != "auto":
        args += ["--provider", parity.provider]
    if parity.seed:
        args += ["--seed", str(parity.seed)]
    return shlex.join(args)


def _convert_seq2seq(
    source: str, output: str | Path, options: Any, progress: Progress | None, speech: bool = False
) -> Report:
    """``text2text-generation-with-past`` (``automatic-speech-recognition-with-past`` when ``speech``):
    encoder_model.onnx, decoder_model.onnx, decoder_with_past_model.onnx (optimum's names), configs,
    tokenizer and preprocessor files, generation parity."""
    from .seq2seq import DECODER, DECODER_WITH_PAST, ENCODER, export_seq2seq

    say = progress or no_progress
    src = Path(source)
    out = _out_dir(output, src)
    say(f"loading {source}")
    t0 = time.perf_counter()
    model = load_causal_lm(src, options.export.trust_model, seq2seq=True, speech=speech)
    timings = {"load_s": time.perf_counter() - t0}
    scratch = out.parent / f".{out.name}.partial"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        say("exporting the encoder and the decoders with their KV cache")
        exported = export_seq2seq(
            model,
            scratch,
            opset=options.export.opset or 18,
            routes=options.export.routes,
            debug=options.export.debug,
            speech=speech,
        )
        merged = None
        if options.merged_decoder:
            from .merge import MERGED, merge_decoders

            say(f"merging the two decoders into {MERGED}")
            merged = merge_decoders(scratch / DECODER, scratch / DECODER_WITH_PAST, scratch / MERGED)
        timings["export_s"] = exported.seconds
        copied = _copy_folder_files(src, scratch, model)
        _publish(scratch, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    generation = None
    if options.validate:
        say(f"generating {options.new_tokens} tokens per prompt through {out} and the source")
        generation = _generation(model, out, options.parity, options.new_tokens)
        timings["validate_s"] = generation.seconds
    import onnxruntime as ort

    with_past = ort.InferenceSession(str(out / DECODER_WITH_PAST), providers=["CPUExecutionProvider"])
    route = exported.routes[0] if len(set(exported.routes)) == 1 else ", ".join(exported.routes)
    conversion = ConversionResult(
        framework="huggingface",
        route=route,
        attempts=exported.attempts,
        opset=options.export.opset or 18,
        input_names=tuple(i.name for i in with_past.get_inputs()),
        output_names=tuple(o.name for o in with_past.get_outputs()),
        seconds=exported.seconds,
        notes=(
            (
                f"task text2text-generation-with-past: {ENCODER}, decoder_model.onnx, {DECODER_WITH_PAST} "
                f"({exported.layers} decoder layers); inputs / outputs listed are the decoder with past's"
            ),
            f"copied beside the graphs: {', '.join(copied)}",
            *(
                (
                    f"{merged.path.name}: both decoders behind an If on use_cache_branch, {merged.shared} weights "
                    f"shared ({merged.bytes / 2**20:.1f} MiB against {merged.inputs_bytes / 2**20:.1f} MiB for the "
                    "two); generation parity judged on the two decoders and on the merged one",
                )
                if merged is not None
                else ()
            ),
        ),
    )
    return _report("convert", source, out, timings, generation, conversion)


def validate_with_past(
    source: str, folder: str | Path, trust: bool, parity: Any, *, new_tokens: int = 32, progress: Progress | None = None
) -> Report:
    """``validate FOLDER OUT_DIR``: generation parity of a with-past folder against its source folder."""
    say = progress or no_progress
    say(f"loading {source}")
    t0 = time.perf_counter()
    from ..converters.hf_folder import _json
    from .tasks import task_of

    task = "text-generation-with-past"
    if not is_python_source(source):
        task = task_of(_json(Path(source) / "config.json", "model config")) or task
    model = load_lm_source(
        source, trust, seq2seq=task != "text-generation-with-past", speech=task.startswith("automatic-speech")
    ).model
    timings = {"load_s": time.perf_counter() - t0}
    say(f"generating {new_tokens} tokens per prompt through {folder} and the source")
    generation = _generation(model, Path(folder), parity, new_tokens, debug=(source, trust))
    timings["validate_s"] = generation.seconds
    return _report("validate", source, folder, timings, generation)


def _copy_folder_files(src: Path, dst: Path, model: Any) -> tuple[str, ...]:
    """config.json, generation_config.json (written from the model when the folder has none) and the
    tokenizer files, beside the graph."""
    copied = []
    for name in FOLDER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
            copied.append(name)
    if "generation_config.json" not in copied:
        model.generation_config.to_json_file(dst / "generation_config.json")
        copied.append("generation_config.json (from the model)")
    from ..converters.hf_folder import _json

    for name in auto_map_files(src, _json(src / "config.json", "model config")):  # config.json's auto_map needs them
        shutil.copy2(src / name, dst / name)
        copied.append(name)
    return tuple(copied)


def _publish(scratch: Path, out: Path) -> None:
    """The finished files into ``out`` (a previous output's model files replaced)."""
    out.mkdir(exist_ok=True)
    for stale in (
        "model.onnx",
        "model.onnx.data",
        "genai_config.json",
        "encoder_model.onnx",
        "decoder_model.onnx",
        "decoder_with_past_model.onnx",
        "decoder_model_merged.onnx",
    ):
        (out / stale).unlink(missing_ok=True)
    for f in scratch.iterdir():
        if f.is_file():
            shutil.move(str(f), out / f.name)
