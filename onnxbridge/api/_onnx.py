"""Verbs on an ONNX file alone: ``simplify`` (parity-checked against the original) and ``inspect``."""

from __future__ import annotations

from pathlib import Path

from .._util import Progress, no_progress
from ..fsutil import check_output_path
from ..options import OptimizeOptions
from ..results import Report

__all__ = ["simplify", "inspect"]


def simplify(
    model: str | Path,
    output: str | Path,
    *,
    validate: bool = True,
    seed: int = 0,
    optimize: str | None = None,
    fuse_transformer: str | None = None,
    progress: Progress | None = None,
) -> Report:
    """Simplify an ONNX file into ``output``, keeping the original if parity breaks; ``optimize`` /
    ``fuse_transformer`` as for :func:`~onnxbridge.api.convert`."""
    from ..converters.base import axis_sizes as default_sizes
    from ..onnxio import input_specs, load_onnx, save_onnx
    from ..transforms.simplify import simplify_model
    from ._stages import id_ranges, simplify_check

    say = progress or no_progress
    out = check_output_path(output, model)
    optimize_options = OptimizeOptions(optimize, fuse_transformer)
    say(f"loading {model}")
    original = load_onnx(model)
    specs = input_specs(original)
    sizes = default_sizes(specs)
    say("simplifying")
    check = simplify_check(original, specs, sizes, None, seed) if validate else None
    result, simp = simplify_model(original, check)
    timings = {"simplify_s": simp.seconds}
    opt = None
    if optimize_options.requested:
        from ..transforms.optimize import optimize_step

        say("optimising")
        result, opt = optimize_step(result, optimize_options, specs, sizes, id_ranges(original, None), seed)
        timings["optimize_s"] = opt.seconds
    save_onnx(result, out)
    return Report(command="simplify", source=str(model), framework="onnx", output=str(out), simplify=simp,
                  timings=timings, optimize=opt, notes=opt.notes if opt else ())


def inspect(model: str | Path):
    """Opsets, inputs/outputs, op histogram, parameters and size of an ONNX file."""
    from ..onnxio import model_info

    return model_info(model)
