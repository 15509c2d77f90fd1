"""``onnxbridge simplify MODEL.onnx -o OUT.onnx``."""

from __future__ import annotations

import click

from .options import optimize_options, report_options, simplifier_option
from .render import finish, progress
from .util import check_report_paths


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The ONNX file to write.")
@click.option("--no-validate", is_flag=True, help="Keep the simplified model without a parity check.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for generated inputs.")
@simplifier_option
@optimize_options
@report_options
def simplify(
    model: str, output: str, no_validate: bool, seed: int, simplifier: str, optimize, reports, as_json: bool
) -> int:
    """Simplify MODEL (onnxsim + shape inference, or --simplifier auto) and keep the result only if parity holds."""
    from .. import api

    check_report_paths(reports, model, output)
    with progress(not as_json) as say:
        report = api.simplify(
            model,
            output,
            validate=not no_validate,
            seed=seed,
            optimize=optimize.target,
            fuse_transformer=optimize.fuse,
            simplifier=simplifier,
            progress=say,
        )
    return finish(report, reports, as_json)
