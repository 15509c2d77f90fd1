"""``onnxbridge frameworks``: the converter registry, built-ins and plugins."""

from __future__ import annotations

import json

import click


@click.command("frameworks")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def frameworks(as_json: bool) -> int:
    """Every framework onnxbridge converts from: SOURCE forms, routes, packages, origin (plugins included)."""
    from .. import api
    from ..results import to_plain

    listing = api.frameworks()
    if as_json:
        rows = [{**to_plain(f), "forms": list(f.forms)} for f in listing]
        click.echo(json.dumps({"command": "frameworks", "frameworks": rows}, indent=2))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("framework", "SOURCE forms", "routes", "packages", "origin", title="converters")
    for f in listing:
        packages = ", ".join(f"{p} {v}" if v else f"[dim]{p} (not installed)[/dim]" for p, v in f.packages.items())
        routes = "\n".join(f.routes) or (f"[red]{escape(f.error)}[/red]" if f.error else "-")
        table.add_row(f.name, escape("\n".join(f.forms)) or "-", routes, packages or "-", escape(f.origin))
    Console().print(table)
    return 0
