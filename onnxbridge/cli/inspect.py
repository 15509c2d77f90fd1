"""``onnxbridge inspect MODEL.onnx``."""

from __future__ import annotations

import json

import click


def _dims(dims) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


@click.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option(
    "--target",
    "targets",
    multiple=True,
    metavar="ort[==X.Y],ort-web[==X.Y],tensorrt10,...",
    help="Deployment targets to check MODEL against (comma-separated, repeatable): IR version, opset, ops; "
    "an opset conversion that fixes it is tried and parity-checked.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def inspect_cmd(model: str, targets: tuple[str, ...], as_json: bool) -> int:
    """Opsets, inputs/outputs, op histogram, parameters and size of MODEL (and which runtimes load it).

    Exit 0, or 1 when a --target cannot load MODEL as it is."""
    from .. import api

    info = api.inspect(model, targets)
    code = 1 if any(not t.ok for t in info.targets) else 0
    if as_json:
        click.echo(json.dumps(info.to_dict(), indent=2, allow_nan=False))
        return code
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()  # the model's names and paths are text, not markup
    console.print(
        f"[bold]{escape(str(info.path))}[/bold]: "
        + escape(
            f"{info.size_bytes / 1e6:.2f} MB, IR {info.ir_version}, producer {info.producer or '?'}, "
            f"opsets {info.opsets}"
        )
    )
    console.print(f"nodes {info.nodes}, parameters {info.parameters:,} ({info.initializer_bytes / 1e6:.2f} MB)")
    io = Table("kind", "name", "dims", "dtype", title="inputs and outputs")
    for kind, values in (("input", info.inputs), ("output", info.outputs)):
        for v in values:
            io.add_row(kind, escape(v["name"]), escape(_dims(v["dims"])), v["dtype"])
    console.print(io)
    ops = Table("op", "count", title="op histogram")
    for op, n in info.op_histogram.items():
        ops.add_row(escape(op), str(n))
    console.print(ops)
    if info.targets:
        console.print(_targets_table(info.targets))
    for warning in info.warnings:
        click.echo(f"warning: {warning}", err=True)
    return code


def _targets_table(checks):
    from rich.markup import escape
    from rich.table import Table

    table = Table("target", "loads it?", "why not", "fix", title="deployment targets")
    for t in checks:
        fix = t.fix_command or t.fix_note or ""
        if t.fix_command and t.fix_parity:
            fix += " (parity checked)"
        table.add_row(
            t.target, "[green]yes[/green]" if t.ok else "[red]no[/red]", escape("; ".join(t.problems)), escape(fix)
        )
    return table
