"""The ``onnxbridge debug`` command line that says where a failed check breaks, for notes and reports."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from ..options import ExportOptions, ParityConfig
from ..results import ParityReport

__all__ = ["debug_command", "where_it_breaks"]


def where_it_breaks(
    validation: ParityReport | None, source: str, model: str | Path, export: ExportOptions, parity: ParityConfig
) -> tuple[str, ...]:
    """A note with the ``onnxbridge debug`` command that says where a failed validation breaks (none when
    it passed, or when the source does not repeat itself: then there is only noise to follow)."""
    if validation is None or validation.passed or not validation.compared or validation.source_repeats is False:
        return ()
    return (
        f"to see where it breaks (first diverging module / layer / node): "
        f"{debug_command(source, [str(model)], export, parity)}",
    )


def debug_command(source: str, models: Sequence[str], export: ExportOptions, parity: ParityConfig) -> str:
    """The ``onnxbridge debug`` command line that reruns this localisation on the same case."""
    args = ["onnxbridge", "debug", str(source), *map(str, models)]
    for spec in export.inputs:
        args += ["--input", str(spec)]
    if export.framework:
        args += ["--framework", export.framework]
    if export.trust_model:
        args.append("--trust-model")
    if export.task:
        args += ["--task", export.task]
    if parity.provider != "auto":
        args += ["--provider", parity.provider]
    t = parity.tolerances
    args += [x for flag, v in (("--atol", t.atol), ("--rtol", t.rtol)) if v is not None for x in (flag, f"{v:g}")]
    for name, tol in t.per_output:
        args += ["--tol", f"{name}={tol.atol:g}" + ("" if tol.rtol is None else f",{tol.rtol:g}")]
    if parity.seed:
        args += ["--seed", str(parity.seed)]
    if parity.inputs_file:
        args += ["--inputs", str(parity.inputs_file)]
    return shlex.join(args)
