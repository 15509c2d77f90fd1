"""The variant stage for a with-past decoder folder (``variant OUT_DIR --to int4``, ``convert FOLDER -o
OUT_DIR --variant int4``): each kind's folder form writes a whole copy (``OUT_DIR-int4/``, optimum's layout),
judged on generation against the fp32 folder, and published, every file together, only when it keeps its
budget (token agreement over the greedy run, logit drift per step, perplexity ratio on a text). The fp32
folder is only read. Not timed here: ``onnxbridge bench`` times decode.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._util import Progress, first_line, no_progress
from ..errors import OnnxBridgeError, UsageError
from ..options import DECISIVE_MARGIN, VariantOptions
from ..results import GenerationJudgement, VariantResult, VariantsReport, VariantStatus
from .accuracy import judge_generation
from .build import VariantUnavailable
from .kind import VariantKind, VariantKinds, VariantTarget
from .registry import KINDS

if TYPE_CHECKING:
    from ..generation.loop import DecoderSession, GenerationRun
    from ..generation.perplexity import EvalText

__all__ = ["folder_targets", "run_folder_variants"]

FOLDER = VariantTarget.WITH_PAST_FOLDER


def folder_targets(folder: Path, options: VariantOptions, kinds: VariantKinds = KINDS) -> dict[str, Path]:
    """Where each copy goes (checked before any work): ``-o DIR`` for one kind, else ``FOLDER-KIND`` beside
    the folder (or in ``--out-dir``); never the folder itself or inside it, never a folder of other files."""
    resolved = kinds.resolve(options.kinds, FOLDER)
    for kind in resolved:
        kind.budget_for(options, FOLDER)  # a file's metric in --budget: exit 2 now
    if options.output is not None:
        targets = {resolved[0].name: options.output}
    else:
        parent = options.out_dir or folder.resolve().parent
        targets = {k.name: parent / k.folder_name(folder) for k in resolved}
    for path in targets.values():
        p = path.resolve()
        if p == folder.resolve() or folder.resolve() in p.parents:
            raise UsageError(f"{path} is the fp32 folder or inside it", "write the copy to a folder beside it")
        if p.exists() and not p.is_dir():
            raise UsageError(f"{path} is a file", "give a folder for the copy of a with-past folder")
        if p.is_dir() and any(p.iterdir()) and not (p / "model.onnx").is_file():
            raise UsageError(f"{path} holds other files", "give a new or empty folder (or a previous copy)")
        if not p.parent.is_dir():
            raise UsageError(f"{p.parent} does not exist", f"create it first (mkdir -p {p.parent})")
    return targets


def run_folder_variants(
    folder: str | Path, options: VariantOptions, *, progress: Progress | None = None, kinds: VariantKinds = KINDS
) -> VariantsReport:
    """Build, judge on generation and publish (or refuse) every kind asked for of the with-past ``folder``."""
    from ..generation.loop import DecoderSession
    from ..generation.perplexity import eval_text, perplexity
    from ..publish import scratch_dir
    from ..runtime.providers import short_provider

    say = progress or no_progress
    folder = Path(folder)
    targets = folder_targets(folder, options, kinds)
    requested = options.provider
    fp32 = DecoderSession(folder, requested, threads=options.threads)  # not a with-past graph: exit 2
    text = eval_text(folder, options.eval_text, options.eval_ids)
    window = _window(folder)
    say(f"greedy-decoding {options.prompts} prompts x {options.new_tokens} tokens through the fp32 folder")
    prompts = text.prompts(options.prompts)
    ref = fp32.generate(prompts, options.new_tokens, pad=text.pad, keep_logits=True)
    ppl32 = perplexity(fp32, text.ids, window)
    options = dataclasses.replace(options, provider=short_provider(fp32.provider.used))
    results = []
    for kind in kinds.resolve(options.kinds, FOLDER):
        target = targets[kind.name]
        scratch = scratch_dir(target.parent)
        try:
            results.append(_one(kind, folder, target, scratch / target.name, options, ref, text, ppl32, window, say))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return VariantsReport(
        model=str(folder),
        reference="fp32 folder (onnxruntime)",
        provider_requested=requested,
        provider_used=fp32.provider.used,
        fp32_size_bytes=_size(folder),
        fp32_latency=None,
        eager_latency=None,
        fp32_accuracy=(),
        variants=tuple(results),
        inputs=f"{len(prompts)} prompts of {min(map(len, prompts))}-{max(map(len, prompts))} tokens cut from "
        f"{text.source}, left-padded in one batch; perplexity over windows of {window} tokens",
        eval_cases=len(prompts),
        calibration_cases=0,
        shapes={"input_ids": (len(prompts), max(map(len, prompts)))},
        decisive_margin=DECISIVE_MARGIN,
        notes=(
            f"with-past folder: each copy is judged on generation ({options.new_tokens} greedy tokens per prompt, "
            "teacher-forced on fp32's tokens) and on perplexity, not timed; "
            "`onnxbridge bench COPY_FOLDER` times its prefill and decode",
        ),
    )


def _one(
    kind: VariantKind,
    folder: Path,
    target: Path,
    built_at: Path,
    options: VariantOptions,
    ref: GenerationRun,
    text: EvalText,
    ppl32: float,
    window: int,
    say: Progress,
) -> VariantResult:
    from ..generation.loop import DecoderSession

    budget = kind.budget_for(options, FOLDER)
    assert kind.folder is not None  # resolve() keeps the kinds with a folder form
    say(f"building {kind.name} of {folder}")
    t0 = time.perf_counter()
    try:
        try:
            built = kind.folder.build(folder, built_at)
        except OnnxBridgeError:
            raise
        except Exception as e:  # a tool's failure is a reason, not a traceback
            raise VariantUnavailable(f"{kind.name}: {first_line(e)}", "rerun with --debug for the traceback") from e
        seconds = time.perf_counter() - t0
        if not built.details.get("quantized_ops"):
            raise VariantUnavailable(
                f"{kind.name}: nothing was quantised in {folder / 'model.onnx'}", kind.empty_hint or None
            )
        try:
            copy = DecoderSession(built_at, options.provider, threads=options.threads)
        except OnnxBridgeError:
            raise
        except Exception as e:
            raise VariantUnavailable(f"{kind.name} does not load on {options.provider}: {first_line(e)}") from e
    except VariantUnavailable as e:
        return VariantResult(
            kind=kind.name,
            status=VariantStatus.UNAVAILABLE,
            path=None,
            reasons=(e.reason,) + ((f"hint: {e.hint}",) if e.hint else ()),
            budget=budget.as_dict(),
            min_speedup=None,
        )
    say(f"judging {kind.name} on generation")
    judged = _judge(ref, copy, text, ppl32, window)
    failures = judge_generation(judged, budget)
    reasons = (f"over the generation budget ({budget.describe()}): " + "; ".join(failures),) if failures else ()
    status = (
        VariantStatus.PASSED
        if not reasons
        else (VariantStatus.FORCED if options.write_failed else VariantStatus.REFUSED)
    )
    size, written = _size(built_at), None
    if status is not VariantStatus.REFUSED:
        _publish_folder(built_at, target)
        written = str(target)
    return VariantResult(
        kind=kind.name,
        status=status,
        path=written,
        reasons=reasons,
        budget=budget.as_dict(),
        min_speedup=None,
        size_bytes=size,
        size_ratio=size / s if (s := _size(folder)) else None,
        build_s=seconds,
        method=built.method,
        details=dict(built.details),
        generation=judged,
    )


def _judge(ref: GenerationRun, copy: DecoderSession, text: EvalText, ppl32: float, window: int) -> GenerationJudgement:
    from ..generation.perplexity import perplexity
    from ..generation.quant_gate import agreement_with

    a = agreement_with(ref, copy, pad=text.pad)
    ppl = perplexity(copy, text.ids, window)
    return GenerationJudgement(
        prompts=len(ref.prompts),
        new_tokens=a.new_tokens,
        token_agreement=a.token_agreement,
        logit_drift=a.max_relative_drift,
        max_abs_drift=a.max_drift,
        drift_per_step=a.drift_per_step(),
        first_divergence=a.first_divergence,
        perplexity_fp32=ppl32,
        perplexity=ppl,
        perplexity_ratio=ppl / ppl32 if ppl32 > 0 else float("inf"),
        eval_tokens=len(text.ids),
        eval_text=text.source,
    )


def _window(folder: Path, window: int = 128) -> int:
    """The perplexity window: 128 tokens, or fewer where config.json's positions end sooner."""
    path = folder / "config.json"
    cfg: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    limit = cfg.get("max_position_embeddings") or cfg.get("n_positions")
    return min(window, limit) if isinstance(limit, int) and limit > 1 else window


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file() and f.name.startswith("model.onnx"))


def _publish_folder(built: Path, target: Path) -> None:
    """Every file of the copy into ``target`` together (crash-safe, :func:`~onnxbridge.publish.publish`);
    the files of a previous copy that the new one lacks are removed in the same commit."""
    from ..publish import publish

    target.mkdir(exist_ok=True)
    new = {f.name: f for f in built.iterdir() if f.is_file()}
    stale = [f for f in target.iterdir() if f.is_file() and f.name not in new]
    publish({target / name: f for name, f in new.items()}, remove=stale)
