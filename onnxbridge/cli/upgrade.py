"""``onnxbridge upgrade OLD.onnx -o NEW.onnx --opset N``."""

from __future__ import annotations

import click

from .options import PROVIDER_CHOICE, report_options
from .render import finish, progress
from .util import check_report_paths


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="The ONNX file to write.")
@click.option("--opset", type=int, required=True, help="The opset to convert to (higher or lower than the model's).")
@click.option(
    "--test-data",
    type=click.Path(file_okay=False),
    default=None,
    help="A folder holding test_data_set_*/input_*.pb, output_*.pb (default: the model's own folder).",
)
@click.option(
    "--keep-initializer-inputs",
    is_flag=True,
    help="Keep weights listed as graph inputs (IR 3 style) instead of making them constants.",
)
@click.option("--no-simplify", is_flag=True, help="Skip onnxsim.")
@click.option("--no-validate", is_flag=True, help="Skip the parity checks.")
@click.option(
    "--provider",
    type=PROVIDER_CHOICE,
    default="auto",
    show_default=True,
    help="Where the new model runs for the parity checks.",
)
@click.option("--atol", type=float, default=None, help="Absolute tolerance (default: by dtype).")
@click.option("--rtol", type=float, default=None, help="Relative tolerance (default: by dtype).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for generated inputs.")
@report_options
def upgrade(
    model: str,
    output: str,
    opset: int,
    test_data: str | None,
    keep_initializer_inputs: bool,
    no_simplify: bool,
    no_validate: bool,
    provider: str,
    atol: float | None,
    rtol: float | None,
    seed: int,
    reports,
    as_json: bool,
) -> int:
    """Convert MODEL to another opset (up or down): fix the IR version, weights listed as inputs and missing
    shapes, simplify, and replay parity against the original on ONNX Runtime and against the expected
    outputs shipped with the model (model zoo test_data_set_* folders)."""
    from pathlib import Path

    from ..api import upgrade_with
    from ..options import ParityConfig, UpgradeOptions

    check_report_paths(reports, model, output)
    options = UpgradeOptions(
        opset, not no_simplify, not no_validate, Path(test_data) if test_data else None, keep_initializer_inputs
    )
    parity = ParityConfig.build(provider=provider, atol=atol, rtol=rtol, seed=seed)
    with progress(not as_json) as say:
        report = upgrade_with(model, output, options, parity, progress=say)
    return finish(report, reports, as_json)
