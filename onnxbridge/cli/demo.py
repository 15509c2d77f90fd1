"""``onnxbridge demo``."""

from __future__ import annotations

import click

from ..errors import EXIT_OK, EXIT_PARITY
from .options import PROVIDER_CHOICE
from .render import progress, summary_table


@click.command()
@click.option(
    "--out-dir",
    default="onnxbridge-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the ONNX files and reports go.",
)
@click.option("--provider", type=PROVIDER_CHOICE, default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON reports on stdout.")
def demo(out_dir: str, provider: str, as_json: bool) -> int:
    """Convert, simplify and validate bundled example models (no downloads)."""
    from ..demo import run_demo

    with progress(not as_json) as say:
        reports = run_demo(out_dir, provider=provider.lower(), progress=say)
    if as_json:
        import json

        click.echo(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        from rich.console import Console

        console = Console()
        for r in reports:
            console.print(summary_table(r))
        console.print(f"reports and ONNX files in {out_dir}/", markup=False)
    return EXIT_OK if all(r.passed for r in reports) else EXIT_PARITY
