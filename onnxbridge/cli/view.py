"""``onnxbridge view MODEL.onnx [--report REPORT.json] [--no-browser]``: the graph with our overlays."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from pathlib import Path

_SHOWN_LAST = ("placement", "time", "divergence")


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option(
    "--report",
    "report",
    type=click.Path(dir_okay=False),
    default=None,
    help="A report written by debug / validate / bench --profile: show the overlays written beside it.",
)
@click.option("--no-browser", is_flag=True, help="Print the URL instead of opening a browser.")
@click.option("--port", type=int, default=None, help="Loopback port to serve on (default: a free one).")
def view(model: str, report: str | None, no_browser: bool, port: int | None) -> int:
    """Open Google's Model Explorer on MODEL, with the divergence, placement and time overlays of REPORT
    (the first divergence selected). Served on 127.0.0.1 only; works offline. Needs onnxbridge[view].

    \b
      onnxbridge debug models.py:net net.onnx --report where.json
      onnxbridge view net.onnx --report where.json
      onnxbridge bench net.onnx --profile --report speed.json && onnxbridge view net.onnx --report speed.json
    """
    from ..overlays import read_index
    from ..overlays.beside import first_divergence
    from ..overlays.viewer import plan_view, require_viewer, serve

    require_viewer()
    files: tuple[Path, ...] = ()
    select = None
    if report is not None:
        index = read_index(report)
        # the viewer colours the graph by the overlay added last: divergence over time over placement
        files = tuple(
            f.path
            for f in sorted(index.files, key=lambda f: _SHOWN_LAST.index(f.kind) if f.kind in _SHOWN_LAST else -1)
        )
        for f in index.files:
            click.echo(f"overlay {f.kind}: {f.title} ({f.summary})")
            for item in f.legend:
                click.echo(f"  {item.color}  {item.meaning}")
        select = first_divergence(index)
    plan = plan_view(model, files, port, select)
    if report is not None and plan.model != index.model:
        click.echo(f"note: the overlays were written for {index.model}; nodes of another model may not match", err=True)
    click.echo(f"viewer: {plan.url}", nl=True)
    click.echo("serving on 127.0.0.1 only; Ctrl+C stops it")
    serve(plan, open_browser=not no_browser)
    return 0
