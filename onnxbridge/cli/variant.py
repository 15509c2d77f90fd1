"""``onnxbridge variant MODEL.onnx --to fp16,int8``."""

from __future__ import annotations

import click

from ..errors import EXIT_OK, EXIT_PARITY, EXIT_USAGE
from ..results import Report, VariantStatus
from .options import export_options, report_options, variant_options
from .render import finish, progress
from .util import check_report_paths

__all__ = ["variant", "variants_exit"]


def variants_exit(report: Report, code: int) -> int:
    """The exit code with the variants' verdicts folded in, the most serious first: 2 when a variant
    could not be produced, 1 when one failed its gate (refused, or written with --write-failed)."""
    if report.variants is None:
        return code
    statuses = {v.status for v in report.variants.variants}
    worst = (
        EXIT_USAGE
        if VariantStatus.UNAVAILABLE in statuses
        else EXIT_PARITY
        if statuses & {VariantStatus.REFUSED, VariantStatus.FORCED}
        else EXIT_OK
    )
    return max(code, worst)


@click.command()
@click.argument("model", type=click.Path())
@variant_options
@click.option(
    "--source",
    default=None,
    metavar="SOURCE",
    help="Judge the variants against the source framework (file.py:NAME, model.pt2, ...) instead of MODEL.",
)
@export_options()
@report_options
def variant(model: str, options, source: str | None, export, reports, as_json: bool) -> int:
    """Build deployment variants of MODEL, each written only if it keeps its accuracy budget and runs
    faster than fp32 on --provider. MODEL may be a with-past decoder folder (convert --task
    text-generation-with-past): int4 / int8 then write a copy folder FOLDER-KIND beside it, judged on
    generation (token agreement, logit drift per step) and on perplexity over a text, not timed.

    \b
      onnxbridge variant model.onnx --to fp16,int8
      onnxbridge variant model.onnx --to int8-static --inputs calib.npz --budget top1_decisive=0.99
      onnxbridge variant model.onnx --to int4 --source models.py:lm --input input_ids:batch,seq:int64
      onnxbridge variant llama-onnx/ --to int4,int8

    Exit codes: 0 every variant passed, 1 one failed its gate (not written, or written with
    --write-failed and marked FAIL), 2 one could not be produced here (the message says why).
    """
    from .. import api

    check_report_paths(reports, model, source)
    with progress(not as_json) as say:
        report = api.variant_with(model, options, source=source, export=export, progress=say)
    return variants_exit(report, finish(report, reports, as_json))
