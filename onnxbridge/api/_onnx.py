"""Verbs on an ONNX file alone: ``simplify`` (parity-checked against the original) and ``inspect``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .._memory import StagePeaks
from .._util import Progress, no_progress
from ..fsutil import check_output_path
from ..options import OptimizeOptions
from ..results import Report
from ..targets import parse_targets

if TYPE_CHECKING:
    import onnx

    from ..results import ModelInfo, TargetCheck
    from ..specs import TensorSpec
    from ..targets import Target

__all__ = ["simplify", "inspect"]


def simplify(
    model: str | Path,
    output: str | Path,
    *,
    validate: bool = True,
    seed: int = 0,
    optimize: str | None = None,
    fuse_transformer: str | None = None,
    simplifier: str = "onnxsim",
    progress: Progress | None = None,
) -> Report:
    """Simplify an ONNX file into ``output``, keeping the original if parity breaks; ``optimize`` /
    ``fuse_transformer`` / ``simplifier`` as for :func:`~onnxbridge.api.convert`."""
    from ..converters.base import axis_sizes as default_sizes
    from ..onnxio import input_specs, load_onnx, save_onnx, uses_external_data
    from ..parity.domain import InputDomain
    from ..runtime.support import check_runtime_support
    from ..transforms.simplifiers import simplify_with
    from ._stages import id_ranges, simplify_check

    say = progress or no_progress
    out = check_output_path(output, model)
    optimize_options = OptimizeOptions(optimize, fuse_transformer)
    peaks = StagePeaks()
    say(f"loading {model}")
    with peaks.stage("load"):
        original = load_onnx(model)
        check_runtime_support(original, model)
    specs = input_specs(original)
    sizes = default_sizes(specs)
    say("simplifying")
    if uses_external_data(original):
        return _simplify_file(model, out, original, specs, sizes, validate, seed, optimize_options, peaks)
    with peaks.stage("simplify"):
        check = simplify_check(original, InputDomain.of(specs, sizes), seed) if validate else None
        result, simp = simplify_with(original, check, simplifier)
    timings = {"simplify_s": simp.seconds}
    opt = None
    if optimize_options.requested:
        from ..transforms.optimize import optimize_step

        say("optimising")
        with peaks.stage("optimize"):
            result, opt = optimize_step(result, optimize_options, specs, sizes, id_ranges(original, None), seed)
        timings["optimize_s"] = opt.seconds
    save_onnx(result, out)
    return Report(
        command="simplify",
        source=str(model),
        framework="onnx",
        output=str(out),
        simplify=simp,
        timings=timings,
        optimize=opt,
        notes=opt.notes if opt else (),
        peak_rss_bytes=peaks.bytes,
    )


def _simplify_file(
    model: str | Path,
    out: Path,
    original: onnx.ModelProto,
    specs: tuple[TensorSpec, ...],
    sizes: Mapping[str, int],
    validate: bool,
    seed: int,
    optimize_options: OptimizeOptions,
    peaks: StagePeaks,
) -> Report:
    """A model with external data: simplified file to file, weights memory-mapped, then moved into place."""
    import shutil

    from ..onnxio import copy_model, publish_model
    from ..parity.domain import InputDomain
    from ..publish import scratch_dir
    from ..transforms.simplify import simplify_file
    from ._stages import simplify_check

    scratch = scratch_dir(out.parent)
    try:
        with peaks.stage("simplify"):
            check = simplify_check(original, InputDomain.of(specs, sizes), seed, path=model) if validate else None
            kept, simp = simplify_file(model, scratch / out.name, check)
            if kept != scratch / out.name:  # the original stands: copied with its data renamed for OUT
                kept = copy_model(model, scratch / "original" / out.name)
        publish_model(kept, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    notes = (
        ("--optimize / --fuse-transformer are not applied to a model whose weights are in external data",)
        if optimize_options.requested
        else ()
    )
    return Report(
        command="simplify",
        source=str(model),
        framework="onnx",
        output=str(out),
        simplify=simp,
        timings={"simplify_s": simp.seconds},
        notes=notes,
        peak_rss_bytes=peaks.bytes,
    )


def inspect(model: str | Path, targets: str | Sequence[str] = ()) -> ModelInfo:
    """Opsets, inputs/outputs, op histogram, parameters and size of an ONNX file (``warnings``: what the
    installed onnxruntime cannot load in it); with ``targets``
    (``"ort==1.17,ort-web,tensorrt10"``), whether each deployment target loads it, and the opset
    conversion that fixes it where one does (tried here and parity-checked)."""
    import dataclasses

    from ..onnxio import load_onnx, model_info
    from ..runtime.support import runtime_problems

    wanted = parse_targets(targets) if targets else ()  # a bad name fails before any work
    info = model_info(model)
    onnx_model = load_onnx(model, check=False)
    problems = runtime_problems(onnx_model)  # a model newer than the installed onnxruntime: say so
    if problems:
        import onnxruntime as ort

        info = dataclasses.replace(
            info,
            warnings=tuple(
                f"the installed onnxruntime {ort.__version__} cannot load this model: {p}" for p in problems
            ),
        )
    if not wanted:
        return info
    return dataclasses.replace(info, targets=tuple(_judge(onnx_model, t, Path(model)) for t in wanted))


def _judge(model: onnx.ModelProto, target: Target, path: Path) -> TargetCheck:
    """The static check, the installed ONNX Runtime's own word, then the conversion offer."""
    import dataclasses

    from .._util import first_line
    from ..targets import check_target

    verdict = check_target(model, target)
    if verdict.ok and target.installed:
        from ..runtime.sessions import OrtRunner

        try:
            OrtRunner(model, "cpu", path=path)
        except Exception as e:
            return dataclasses.replace(verdict, ok=False, problems=(f"ONNX Runtime refused it: {first_line(e, 200)}",))
    if verdict.fix_opset is None:
        return verdict
    return _offer(model, verdict, target, path, verdict.fix_opset)


def _offer(model: onnx.ModelProto, verdict: TargetCheck, target: Target, path: Path, n: int) -> TargetCheck:
    """Convert to the target's opset in memory; offer the command only when the result passes the target's
    check and matches the original on ONNX Runtime."""
    import dataclasses

    from .._util import first_line
    from ..converters.base import axis_sizes as default_sizes
    from ..errors import OnnxBridgeError
    from ..onnxio import input_specs
    from ..options import ParityPlan
    from ..parity.check import check_generated
    from ..runtime.sessions import OrtRunner
    from ..targets import check_target
    from ..transforms.upgrade import convert_opset

    try:
        converted, _ = convert_opset(model, n)
    except OnnxBridgeError as e:
        return dataclasses.replace(verdict, fix_note=f"no conversion to opset {n}: {e.message}")
    if not check_target(converted, target).ok:
        return dataclasses.replace(verdict, fix_note=f"converted to opset {n}, it still does not fit {target.name}")
    command = f"onnxbridge upgrade {path} -o {path.with_suffix('')}.opset{n}.onnx --opset {n}"
    try:
        specs = input_specs(model)
        report = check_generated(
            OrtRunner(model, "cpu", path=path),
            OrtRunner(converted, "cpu"),
            specs,
            default_sizes(specs),
            ParityPlan.from_seed(0, 1),
        )
    except Exception as e:  # the original may be too new for the installed ONNX Runtime
        return dataclasses.replace(
            verdict,
            fix_opset=n,
            fix_command=command,
            fix_note=f"parity not checked here ({first_line(e, 150)}); upgrade checks it",
        )
    return dataclasses.replace(
        verdict,
        fix_opset=n,
        fix_command=command if report.passed else None,
        fix_parity=report.passed,
        fix_note=None if report.passed else f"opset {n} breaks parity ({report.summary()})",
    )
