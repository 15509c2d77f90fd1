"""``onnxbridge convert SOURCE -o OUT.onnx``."""

from __future__ import annotations

import click

from .options import optimize_options, report_options, source_options, validate_options
from .render import finish, progress
from .util import check_report_paths


@click.command()
@click.argument("source")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The ONNX file to write.")
@source_options
@click.option("--opset", type=int, default=None, help="Target ONNX opset (default: the exporter's).")
@click.option("--route", "routes", multiple=True, metavar="NAME",
              help="Export route(s) to try, in order (e.g. torch.export/dynamo, torchscript). Default: all.")
@click.option("--no-simplify", is_flag=True, help="Skip simplification.")
@click.option("--no-validate", is_flag=True, help="Skip the parity check.")
@optimize_options
@validate_options
@report_options
def convert(source: str, output: str, inputs, framework, trust_model, opset, routes, no_simplify, no_validate, optimize,
            fuse_transformer, provider,
            atol, rtol, tolerances, fallback, seed, inputs_file, save_inputs, save_outputs, reports, as_json) -> int:
    """Export SOURCE to ONNX, simplify it, and validate it against SOURCE.

    SOURCE is file.py:NAME, package.module:NAME or model.pt2 (TensorFlow and Keras forms
    where their converter is installed). Example:

      onnxbridge convert models.py:resnet -o resnet.onnx --input x:batch,3,224,224
    """
    from .. import api

    check_report_paths(reports, source, output)
    with progress(not as_json) as say:
        report = api.convert(
            source, output, inputs=inputs, framework=framework, opset=opset, simplify=not no_simplify,
            validate=not no_validate, provider=provider.lower(), atol=atol, rtol=rtol, seed=seed,
            tolerances=tolerances, fallback=fallback.lower(), inputs_file=inputs_file, save_inputs=save_inputs,
            save_outputs=save_outputs,
            trust_model=trust_model, routes=routes, optimize=optimize and optimize.lower(),
            fuse_transformer=fuse_transformer and fuse_transformer.lower(), progress=say,
        )
    return finish(report, reports, as_json)
