"""Terminal rendering of reports (rich), plus writing report files and choosing the exit code."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from ..errors import EXIT_OK, EXIT_PARITY
from ..results import Report

__all__ = ["finish", "progress", "summary_table"]


@contextmanager
def progress(enabled: bool = True) -> Iterator:
    """A rich status line on stderr; yields a callback taking one line of text."""
    if not enabled or not sys.stderr.isatty():
        yield lambda text: None
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True)
    with console.status("starting") as status:
        yield lambda text: status.update(f"[bold]{escape(text)}")


def summary_table(report: Report):
    """A rich table of one report: route, simplification, worst error per output, verdict. Its text is
    shown as it is (a bracket in a note, a name or a line of code is not markup): only a row added with
    ``marked=True`` is markup, its text escaped where it is placed."""
    from rich.markup import escape
    from rich.table import Table

    class PlainTable(Table):
        def add_row(self, *cells, marked: bool = False, **kw) -> None:
            super().add_row(*(escape(c) if isinstance(c, str) and not marked else c for c in cells), **kw)

    conv = report.conversion
    t = PlainTable(title=escape(f"onnxbridge {report.command}: {report.source or ''}"), show_lines=False)
    t.add_column("step")
    t.add_column("result")
    if conv is not None and conv.route:
        lost = [f"{a.route} ({a.failing_op or a.error or 'failed'})" for a in conv.attempts if not a.ok]
        t.add_row("export", f"{conv.route} (opset {conv.opset})" + (f"; lost: {'; '.join(lost)}" if lost else ""))
    u = report.upgrade
    if u is not None:
        _upgrade_rows(t, u)
    s = report.simplify
    if s is not None:
        t.add_row(
            "simplify",
            f"nodes {s.nodes_before} -> {s.nodes_after}, {s.seconds:.2f} s" + (f" ({s.reason})" if s.reason else ""),
        )
    v = report.validation
    if v is not None:
        worst: dict[str, float] = {}
        for c in v.cases:
            for o in c.outputs:
                worst[o.name] = max(worst.get(o.name, 0.0), o.max_abs)
        t.add_row("provider", f"{v.provider_used} (asked: {v.provider_requested})")
        t.add_row("cases", f"{len(v.cases)} ({', '.join(c.label for c in v.cases)})")
        for name, w in worst.items():
            t.add_row(f"  {name}", f"worst max_abs {w:.3g}")
        t.add_row("parity", f"{_verdict(v.passed)} {escape(v.summary())}", marked=True)
        if v.placement is not None:
            t.add_row("placement", v.placement.summary())
        for n in v.notes:
            t.add_row("note", n)
    g = report.generation
    if g is not None:
        t.add_row("generation", f"{_verdict(g.passed)} {escape(g.summary())}", marked=True)
    kv = report.cache_divergence
    if kv is not None:
        t.add_row("kv cache", f"{_verdict(kv.passed)} {escape(kv.summary())}", marked=True)
    if report.variants is not None:
        _variant_rows(t, report.variants)
    if report.localization is not None:
        _localization_rows(t, report.localization)
    if report.output:
        t.add_row("output", report.output)
    for n in list(report.notes) + (list(conv.notes) if conv is not None else []):
        t.add_row("note", n)
    return t


def _upgrade_rows(t, u) -> None:
    """What ``upgrade`` changed, and the replay of the expected outputs the model shipped with."""
    t.add_row(
        "upgrade",
        f"opset {u.opset_before} -> {u.opset_after}, IR {u.ir_before} -> {u.ir_after}, "
        f"nodes {u.nodes_before} -> {u.nodes_after}",
    )
    t.add_row("  op types", u.replaced)
    if u.op_versions:
        t.add_row("  op versions", ", ".join(f"{op} {a}->{b}" for op, (a, b) in u.op_versions.items()))
    if u.initializer_inputs_removed or u.shapes_added:
        t.add_row(
            "  repairs",
            f"{u.initializer_inputs_removed} weight input(s) made constants, {u.shapes_added} output shape(s) inferred",
        )
    if u.golden is not None:
        from rich.markup import escape

        replay = f"{u.golden.summary()} ({u.golden_source})"
        t.add_row("expected outputs", f"{_verdict(u.golden.passed)} {escape(replay)}", marked=True)
    for n in u.notes:
        t.add_row("note", n)


def _variant_rows(t, r) -> None:
    """One row per variant: verdict, size, p50 and speed-ups, the gated metrics, and why it failed."""
    from rich.markup import escape

    from ..report.markdown import variant_cells

    base = r.fp32_latency
    t.add_row("variants", f"on {r.provider_used}; fp32 p50 {base.p50:.3g} ms" if base else f"on {r.provider_used}")
    for v in r.variants:
        cells = variant_cells(v)
        colour = "green" if v.passed else "red"
        line = f"{cells['size']}" + (f", p50 {cells['p50']}, {cells['speedup']}" if v.latency else "")
        if cells["accuracy"] != "-":
            line += f"; {cells['accuracy']}"
        if v.path:
            line += f" -> {v.path}"
        t.add_row(f"  {v.kind}", f"[{colour}]{escape(cells['verdict'])}[/{colour}] {escape(line)}", marked=True)
        for why in v.reasons:
            t.add_row("", f"[red]{escape(why)}[/red]", marked=True)


def _localization_rows(t, loc) -> None:
    """Where it diverges, in a few rows: stage, first diverging place, its source line, the repro."""
    from rich.markup import escape

    from ..report.divergence import sparkline

    if loc.broken_stage:
        t.add_row("stage", f"[red]{escape(loc.broken_stage)}[/red] breaks parity", marked=True)
    else:
        t.add_row("stage", "no stage breaks parity")
    f = loc.first
    if f is None:
        t.add_row("diverges at", f"nothing beyond tolerance ({loc.compared} compared)")
    else:
        t.add_row(
            "diverges at",
            f"[bold]{escape(f.name)}[/bold] " + escape(f"[{f.class_name}], {f.where}; error/tolerance {f.score:.3g}"),
            marked=True,
        )
        if f.call_site:
            t.add_row("  source", f"{f.call_site}  {f.call_site.code}")
        elif f.source:
            t.add_row("  defined at", str(f.source))
        if f.module:
            t.add_row("  module", f.module)
        t.add_row("  onnx nodes", ", ".join(f.onnx_nodes[:6]) + (" ..." if len(f.onnx_nodes) > 6 else ""))
        for s in f.also_suspect[:4]:
            t.add_row("  also suspect", s)
    spark = sparkline(loc, 48)
    if spark:
        t.add_row("per layer", spark)
    if loc.repro is not None:
        t.add_row("repro", f"{loc.repro.nodes} node(s): {loc.repro.command}")
    t.add_row("rerun", loc.command)
    for n in loc.notes:
        t.add_row("note", n)


def _verdict(passed: bool) -> str:
    return "[green]PASS[/green]" if passed else "[red]FAIL[/red]"


def finish(report: Report, reports: tuple[str, ...], as_json: bool) -> int:
    """Write report files, print the summary (or JSON), and return the exit code."""
    from ..overlays import write_with_overlays

    for path in reports:
        write_with_overlays(report, path)  # Model Explorer node data beside it (onnxbridge view)
    if as_json:
        from ..report import to_json

        click.echo(to_json(report))
    else:
        from rich.console import Console
        from rich.markup import escape

        console = Console()
        console.print(summary_table(report))
        failed = [r for r in (report.validation, report.upgrade and report.upgrade.golden) if r and not r.passed]
        for validation in failed:
            for case, out in validation.failures[:20]:
                where = f"case {case.label}" + (f", output '{out.name}'" if out else "")
                why = (
                    case.error
                    if out is None
                    else (
                        out.error
                        or f"max_abs {out.max_abs:.3g} > atol {out.atol:g} (+rtol {out.rtol:g}), "
                        f"{out.mismatched} element(s) off, worst at {list(out.worst_index or ())}"
                    )
                )
                console.print(f"[red]✗[/red] {escape(f'{where}: {why}')}", markup=True, highlight=False)
        g = report.generation
        for i, row in enumerate((*g.rows, *g.batch_one) if g is not None else ()):
            if not row.passed:
                console.print(f"[red]✗[/red] {escape(row.describe(i))}", markup=True, highlight=False)
        if g is not None and not g.passed and g.debug_command:
            console.print(
                f"to see which layer's cache diverges first: {g.debug_command}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        c = report.cache_divergence
        if c is not None and c.first is not None:
            console.print(f"[red]✗[/red] {escape(c.summary())}", markup=True, highlight=False)
        for path in reports:
            console.print(f"report written: {path}", markup=False)
        ctx = click.get_current_context(silent=True)
        if ctx is not None and (ctx.find_root().obj or {}).get("debug"):
            for line in stage_lines(report):
                console.print(line, markup=False, highlight=False)
    return EXIT_PARITY if report.passed is False else EXIT_OK


def stage_lines(report: Report) -> list[str]:
    """``--debug``: where the time and the memory went, stage by stage, and each case's runs."""
    lines = [f"time {k.removesuffix('_s')}: {v:.2f} s" for k, v in report.timings.items()]
    lines += [f"peak memory {k}: {v / 2**20:.0f} MiB" for k, v in report.peak_rss_bytes.items()]
    for case in report.validation.cases if report.validation is not None else ():
        lines.append(f"case {case.label}: source {_secs(case.source_s)}, onnx {_secs(case.onnx_s)}")
    return lines


def _secs(seconds: float | None) -> str:
    return "not run" if seconds is None else f"{seconds * 1000:.1f} ms"
