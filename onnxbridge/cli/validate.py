"""``onnxbridge validate SOURCE MODEL.onnx`` / ``A.onnx B.onnx`` / ``MODEL.onnx --inputs --expected``."""

from __future__ import annotations

import click

from .options import report_options, source_options, validate_options
from .render import finish, progress
from .util import check_report_paths


@click.command()
@click.argument("source")
@click.argument("model", required=False, type=click.Path(dir_okay=False))
@source_options
@validate_options
@click.option("--expected", "expected_file", type=click.Path(dir_okay=False), default=None,
              help="Golden outputs (.npz) to replay against MODEL, with --inputs.")
@report_options
def validate(source: str, model: str | None, inputs, framework, trust_model, provider, atol, rtol, tolerances,
             fallback, seed, inputs_file, save_inputs, save_outputs, expected_file, reports, as_json) -> int:
    """Check the parity of an ONNX model against SOURCE, a second ONNX model, or golden fixtures.

    \b
      onnxbridge validate models.py:net net.onnx --input x:batch,16
      onnxbridge validate original.onnx simplified.onnx
      onnxbridge validate net.onnx --inputs in.npz --expected out.npz
      onnxbridge validate net.onnx net_fp16.onnx --tol logits=1e-2 --report parity.html
    """
    from .. import api

    check_report_paths(reports, source, model)
    with progress(not as_json) as say:
        report = api.validate(
            source, model, inputs=inputs, framework=framework, provider=provider.lower(), atol=atol, rtol=rtol,
            tolerances=tolerances, fallback=fallback.lower(), seed=seed, inputs_file=inputs_file, expected_file=expected_file, save_inputs=save_inputs,
            save_outputs=save_outputs, trust_model=trust_model, progress=say,
        )
    return finish(report, reports, as_json)
