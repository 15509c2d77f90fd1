"""``onnxbridge inspect MODEL.onnx``."""

from __future__ import annotations

import json

import click


def _dims(dims) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


@click.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def inspect_cmd(model: str, as_json: bool) -> int:
    """Opsets, inputs/outputs, op histogram, parameters and size of MODEL."""
    from .. import api

    info = api.inspect(model)
    if as_json:
        click.echo(json.dumps(info.to_dict(), indent=2, allow_nan=False))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{info.path}[/bold]: {info.size_bytes / 1e6:.2f} MB, IR {info.ir_version}, "
                  f"producer {info.producer or '?'}, opsets {info.opsets}")
    console.print(f"nodes {info.nodes}, parameters {info.parameters:,} ({info.initializer_bytes / 1e6:.2f} MB)")
    io = Table("kind", "name", "dims", "dtype", title="inputs and outputs")
    for kind, values in (("input", info.inputs), ("output", info.outputs)):
        for v in values:
            io.add_row(kind, v["name"], _dims(v["dims"]), v["dtype"])
    console.print(io)
    ops = Table("op", "count", title="op histogram")
    for op, n in info.op_histogram.items():
        ops.add_row(op, str(n))
    console.print(ops)
    return 0
