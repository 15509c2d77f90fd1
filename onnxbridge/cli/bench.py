"""``onnxbridge bench MODEL.onnx [--source SOURCE]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..errors import EXIT_OK
from .options import bench_options, export_options, report_options
from .util import check_report_paths

if TYPE_CHECKING:
    from ..results import BenchCase, BenchReport


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--source", default=None, help="Also time SOURCE eager on the same inputs and report the speed-up.")
@click.option("--profile", is_flag=True,
              help="Per-node time from ONNX Runtime's profiler (top nodes; overlays beside --report for onnxbridge view).")
@export_options()
@bench_options
@report_options
def bench(model: str, source: str | None, profile: bool, export, config, reports, as_json: bool) -> int:
    """Time MODEL on ONNX Runtime (p50/p90/p99, throughput), optionally against SOURCE eager.

    \b
      onnxbridge bench model.onnx --provider cpu --batch 1,8 --axis seq=128
      onnxbridge bench model.onnx --source models.py:net --runs 200 --report bench.json
      onnxbridge bench model.onnx --profile --report bench.json   # then: onnxbridge view model.onnx --report bench.json
    """
    from ..api import bench_with
    from .render import progress

    check_report_paths(reports, model)
    with progress(not as_json) as say:
        report = bench_with(model, config, source=source, export=export, profile=profile, progress=say)
    from ..overlays import write_with_overlays

    for path in reports:
        write_with_overlays(report, path)  # per-node time beside it (onnxbridge view)
    if as_json:
        from ..report import to_json

        click.echo(to_json(report))
        return EXIT_OK
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    if report.bench is not None:
        console.print(bench_table(report.bench, str(model)))
    if report.bench is not None and report.bench.profile is not None:
        from .profile_table import profile_table

        console.print(profile_table(report.bench.profile))
    for note in report.notes:
        console.print(f"note: {note}", highlight=False, markup=False)
    for path in reports:
        console.print(f"report written: {path}", markup=False)
    return EXIT_OK


def _label(r: BenchCase) -> str:
    if r.runtime != "onnxruntime":
        return f"{r.runtime} {r.settings.get('device', '')}".strip()
    from ..runtime.providers import short_provider

    return f"ort {short_provider(r.provider_used)}" + (" iobind" if r.io_binding else "")


def bench_table(b: BenchReport, title: str):
    """One row per measurement: runtime / provider, batch, percentiles, throughput, speed-up."""
    from rich.markup import escape
    from rich.table import Table

    from ..results.bench import SPEEDUP_BASIS

    t = Table(title=escape(f"onnxbridge bench: {title}"),
              caption=escape(f"speed-up: {SPEEDUP_BASIS}") if b.reference_results else None)
    for col in ("runtime", "batch", "p50 ms", "p90 ms", "p99 ms", "mean±sd", "per s", "speed-up"):
        t.add_column(col, justify="left" if col == "runtime" else "right", no_wrap=True)
    for r in b.results + b.reference_results:
        lat, speed = r.stats, r.speedup_vs_reference
        t.add_row(
            _label(r), str(r.batch), f"{lat.p50:.3g}", f"{lat.p90:.3g}", f"{lat.p99:.3g}",
            f"{lat.mean:.3g}±{lat.stdev:.2g}", f"{r.throughput_per_s:,.1f}",
            "-" if speed is None else f"{speed:.2f}x",
        )
    return t
