"""``convert FOLDER -o OUT_DIR --task text-generation-with-past``: load the causal LM with its cache,
export it (:mod:`.export`), write optimum's folder layout with the configs and tokenizer files beside
the graph, and judge generation token by token (:mod:`.parity`)."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

from .._util import Progress, no_progress
from ..errors import InputError, UsageError
from ..results import ConversionResult, Report
from .lm_source import auto_map_files, is_python_source, load_causal_lm, load_lm_source, pad_id, write_source_files
from .routes import WITH_PAST_ROUTES, export_routes

__all__ = ["FOLDER_FILES", "WITH_PAST_ROUTES", "cache_debug_command", "convert_with_past", "validate_with_past"]

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
        judge = (lambda d: _generation(model, d, options.parity, options.new_tokens)) if options.validate else None
        exported, generation = export_routes(model, src, scratch, options, judge)
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
        return seq2seq_parity(model, out, new_tokens=new_tokens, pad=pad_id(model), provider=provider, seed=parity.seed)
    verdict = generation_parity(
        model, out, new_tokens=new_tokens, pad=pad_id(model), provider=provider, seed=parity.seed
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


_MODEL_FILES = (
    "model.onnx",
    "model.onnx.data",
    "genai_config.json",
    "encoder_model.onnx",
    "decoder_model.onnx",
    "decoder_with_past_model.onnx",
    "decoder_model_merged.onnx",
)


def _publish(scratch: Path, out: Path) -> None:
    """The finished files into ``out``, all together or none (:func:`~onnxbridge.publish.publish`); a
    previous output's model files that the new set lacks are removed in the same commit."""
    from ..publish import publish

    out.mkdir(exist_ok=True)
    new = {f.name: f for f in scratch.iterdir() if f.is_file()}
    stale = [out / n for n in _MODEL_FILES if n not in new and (out / n).exists()]
    publish({out / name: f for name, f in new.items()}, remove=stale)
