"""``onnxbridge bench MODEL.onnx [--source SOURCE]``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..errors import EXIT_OK
from .options import bench_options, export_options, report_options
from .util import check_report_paths

if TYPE_CHECKING:
    from ..results import BenchCase, BenchReport, DecodeBench


@click.command()
@click.argument("model", type=click.Path())
@click.option(
    "--source",
    default=None,
    help="Also time SOURCE eager on the same inputs and report the speed-up "
    "(a with-past folder: the Hugging Face folder it came from).",
)
@click.option(
    "--profile",
    is_flag=True,
    help="Per-node time from ONNX Runtime's profiler (top nodes; overlays beside --report for onnxbridge view).",
)
@click.option(
    "--prompt-length",
    type=int,
    default=128,
    show_default=True,
    help="With-past folder: prompt tokens of the timed prefill.",
)
@click.option(
    "--new-tokens",
    type=int,
    default=64,
    show_default=True,
    help="With-past folder: greedy tokens per row (the first from the prefill).",
)
@click.option(
    "--trials",
    type=int,
    default=3,
    show_default=True,
    help="With-past folder: interleaved trials per side and batch (the median is reported).",
)
@export_options()
@bench_options
@report_options
def bench(
    model: str,
    source: str | None,
    profile: bool,
    prompt_length: int,
    new_tokens: int,
    trials: int,
    export,
    config,
    reports,
    as_json: bool,
) -> int:
    """Time MODEL on ONNX Runtime (p50/p90/p99, throughput), optionally against SOURCE eager.

    MODEL may be a with-past folder (convert --task text-generation-with-past): then prefill latency and
    decode tokens/s at --batch (default 1,4), ONNX Runtime with and without IO binding of the cache, against
    SOURCE in transformers with its cache, interleaved.

    \b
      onnxbridge bench model.onnx --provider cpu --batch 1,8 --axis seq=128
      onnxbridge bench model.onnx --source models.py:net --runs 200 --report bench.json
      onnxbridge bench model.onnx --profile --report bench.json   # then: onnxbridge view model.onnx --report bench.json
      onnxbridge bench out_dir --source hf_folder --prompt-length 128 --batch 1,4
    """
    from pathlib import Path

    from ..api import bench_with
    from ..api._bench import decode_config
    from .render import progress

    check_report_paths(reports, model)
    decode = (
        decode_config(config, prompt_length=prompt_length, new_tokens=new_tokens, trials=trials)
        if Path(model).is_dir()
        else None
    )
    with progress(not as_json) as say:
        report = bench_with(model, config, source=source, export=export, profile=profile, progress=say, decode=decode)
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
    if report.decode_bench is not None:
        console.print(decode_table(report.decode_bench, str(model)))
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

    t = Table(
        title=escape(f"onnxbridge bench: {title}"),
        caption=escape(f"speed-up: {SPEEDUP_BASIS}") if b.reference_results else None,
    )
    for col in ("runtime", "batch", "p50 ms", "p90 ms", "p99 ms", "mean±sd", "per s", "speed-up"):
        t.add_column(col, justify="left" if col == "runtime" else "right", no_wrap=True)
    for r in b.results + b.reference_results:
        lat, speed = r.stats, r.speedup_vs_reference
        t.add_row(
            _label(r),
            str(r.batch),
            f"{lat.p50:.3g}",
            f"{lat.p90:.3g}",
            f"{lat.p99:.3g}",
            f"{lat.mean:.3g}±{lat.stdev:.2g}",
            f"{r.throughput_per_s:,.1f}",
            "-" if speed is None else f"{speed:.2f}x",
        )
    return t


def decode_table(b: DecodeBench, title: str):
    """One row per runtime, mode and batch: prefill ms, decode tokens/s, peak memory; the ratios below."""
    from rich.markup import escape
    from rich.table import Table

    ratios = [
        f"{v} batch {n}: decode {d:.2f}x, prefill {p:.2f}x"
        for v in b.variants
        for n in b.batches
        if (d := b.decode_speedup(n, v)) is not None and (p := b.prefill_speedup(n, v)) is not None
    ]
    t = Table(
        title=escape(f"onnxbridge bench: {title} (prompt {b.prompt_length}, {b.new_tokens} new tokens, {b.provider})"),
        caption=escape("ONNX Runtime (faster mode) vs the source: " + "; ".join(ratios)) if ratios else None,
    )
    for col in ("runtime", "variant", "mode", "batch", "prefill ms", "decode tok/s", "peak RSS MiB", "added MiB"):
        t.add_column(col, justify="left" if col in ("runtime", "variant", "mode") else "right", no_wrap=True)
    for r in b.rows:
        t.add_row(
            r.runtime,
            r.variant if r.runtime == "onnxruntime" else "-",
            r.mode,
            str(r.batch),
            f"{r.prefill_ms:.3g}",
            f"{r.decode_tokens_per_s:,.1f}",
            f"{r.peak_rss_bytes / 2**20:,.0f}",
            f"{r.peak_added_bytes / 2**20:,.1f}",
        )
    return t
