"""``onnxbridge validate SOURCE MODEL.onnx`` / ``A.onnx B.onnx`` / ``MODEL.onnx --inputs --expected``."""

from __future__ import annotations

import click

from .options import export_options, localize_options, parity_options, report_options, with_repro_dir
from .render import finish, progress
from .util import check_report_paths


@click.command()
@click.argument("source")
@click.argument("model", required=False, type=click.Path())
@export_options()
@parity_options(expected=True)
@localize_options(flag=True)
@report_options
def validate(source: str, model: str | None, export, parity, localize, reports, as_json: bool) -> int:
    """Check the parity of an ONNX model against SOURCE, a second ONNX model, or golden fixtures.

    \b
      onnxbridge validate models.py:net net.onnx --input x:batch,16
      onnxbridge validate original.onnx simplified.onnx
      onnxbridge validate net.onnx --inputs in.npz --expected out.npz
      onnxbridge validate net.onnx --expected golden.npz     # the gate's fixtures hold both
      onnxbridge validate net.onnx net_fp16.onnx --tol logits=1e-2 --report parity.html
      onnxbridge validate models.py:net net.onnx --localize --report where.html   # and where it breaks
      onnxbridge validate my-llama/ my-llama-onnx/   # a with-past folder: generation parity, token by token
    """
    from .. import api

    check_report_paths(reports, source, model)
    with progress(not as_json) as say:
        report = api.validate_with(
            source, model, export, parity, progress=say, localize=with_repro_dir(localize, reports)
        )
    return finish(report, reports, as_json)
