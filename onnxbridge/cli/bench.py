"""``onnxbridge bench MODEL.onnx [--source SOURCE]``."""

from __future__ import annotations

import click

from ..errors import EXIT_OK, UsageError
from .options import PROVIDER_CHOICE, report_options, source_options
from .util import check_report_paths

OPT_LEVEL_CHOICE = click.Choice(["disable", "basic", "extended", "layout", "all"], case_sensitive=False)


def _int_list(text: str | None, flag: str) -> list[int] | None:
    if not text:
        return None
    out = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise UsageError(f"{flag} {text!r}: {part!r} is not an integer", f"e.g. {flag} 1,8") from None
    return out


def _providers(values: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values or ("auto",):
        for p in v.split(","):
            p = p.strip().lower()
            if p:
                PROVIDER_CHOICE.convert(p, None, None)  # raises click.BadParameter (exit 2) on unknown names
                out.append(p)
    return tuple(out)


def _axes(values: tuple[str, ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        name, sep, size = v.partition("=")
        if not sep or not name.strip() or not size.strip().lstrip("-").isdigit():
            raise UsageError(f"--axis {v!r} is not NAME=SIZE", "e.g. --axis seq=128")
        out[name.strip()] = int(size)
    return out


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--source", default=None, help="Also time SOURCE eager on the same inputs and report the speed-up.")
@source_options
@click.option("--provider", "providers", multiple=True, metavar="auto|cpu|cuda|tensorrt",
              help="Provider(s) to measure: repeat or comma-separate (default auto). One that does not start is an error.")
@click.option("--batch", "batch", default=None, metavar="N[,N...]", help="Batch sizes to sweep, e.g. 1,8 (default 1).")
@click.option("--axis", "axes", multiple=True, metavar="NAME=SIZE", help="Size of a dynamic axis, e.g. seq=128.")
@click.option("--warmup", type=int, default=10, show_default=True, help="Untimed runs first.")
@click.option("--runs", type=int, default=100, show_default=True, help="Timed runs (ignored with --duration).")
@click.option("--duration", type=float, default=None, metavar="SECONDS", help="Time budget instead of --runs.")
@click.option("--threads", type=int, default=None, help="Intra-op threads (ONNX Runtime and the source framework).")
@click.option("--opt-level", type=OPT_LEVEL_CHOICE, default="all", show_default=True,
              help="ONNX Runtime graph optimisation level of the session.")
@click.option("--io-binding", type=click.Choice(["auto", "on", "off"], case_sensitive=False), default="auto",
              show_default=True, help="Bind inputs/outputs on the device (auto: on for CUDA / TensorRT).")
@click.option("--reference-device", type=click.Choice(["auto", "cpu", "cuda"], case_sensitive=False), default="auto",
              show_default=True, help="Where --source runs (auto: CUDA when ONNX Runtime runs on a GPU).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for generated inputs.")
@click.option("--inputs", "inputs_file", type=click.Path(dir_okay=False), default=None,
              help="Real input data (.npz; its first case) instead of generated inputs.")
@report_options
def bench(model: str, source, inputs, framework, trust_model, providers, batch, axes, warmup, runs, duration, threads,
          opt_level, io_binding, reference_device, seed, inputs_file, reports, as_json) -> int:
    """Time MODEL on ONNX Runtime (p50/p90/p99, throughput), optionally against SOURCE eager.

    \b
      onnxbridge bench model.onnx --provider cpu --batch 1,8 --axis seq=128
      onnxbridge bench model.onnx --source models.py:net --runs 200 --report bench.json
    """
    from ..api._bench import bench as run_bench
    from .render import progress

    check_report_paths(reports, model)
    with progress(not as_json) as say:
        report = run_bench(
            model, source=source, inputs=inputs, framework=framework, providers=_providers(providers),
            batches=_int_list(batch, "--batch"), axis_sizes=_axes(axes), warmup=warmup, runs=runs,
            duration_s=duration, threads=threads, opt_level=opt_level.lower(), io_binding=io_binding.lower(),
            reference_device=reference_device.lower(), seed=seed, inputs_file=inputs_file, trust_model=trust_model,
            progress=say,
        )
    for path in reports:
        report.write(path)
    if as_json:
        from ..report import to_json

        click.echo(to_json(report))
        return EXIT_OK
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    console.print(bench_table(report.bench or {}, str(model)))
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    for path in reports:
        console.print(f"report written: {path}")
    return EXIT_OK


def _label(r: dict) -> str:
    if r["runtime"] != "onnxruntime":
        return f"{r['runtime']} {r['settings'].get('device', '')}".strip()
    from ..runtime.providers import short_provider

    return f"ort {short_provider(r['provider_used'])}" + (" iobind" if r["io_binding"] else "")


def bench_table(b: dict, title: str):
    """One row per measurement: runtime / provider, batch, percentiles, throughput, speed-up."""
    from rich.table import Table

    t = Table(title=f"onnxbridge bench: {title}", caption=f"speed-up: {b.get('speedup_basis', '')}"
              if b.get("reference") else None)
    for col in ("runtime", "batch", "p50 ms", "p90 ms", "p99 ms", "mean±sd", "per s", "speed-up"):
        t.add_column(col, justify="left" if col == "runtime" else "right", no_wrap=True)
    rows = list(b.get("results", [])) + list(b.get("reference_results", []))
    for r in rows:
        lat = r["latency_ms"]
        speed = r.get("speedup_vs_reference")
        t.add_row(
            _label(r), str(r["batch"]), f"{lat['p50']:.3g}", f"{lat['p90']:.3g}", f"{lat['p99']:.3g}",
            f"{lat['mean']:.3g}±{lat['stdev']:.2g}", f"{r['throughput_per_s']:,.1f}",
            "-" if speed is None else f"{speed:.2f}x",
        )
    return t
