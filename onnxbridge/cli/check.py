"""``onnxbridge check``: the pre-commit / CI gate over the models a project declares."""

from __future__ import annotations

import json

import click

from ..errors import OnnxBridgeError
from ..gate.executors.registry import EXECUTORS

_MARK = {"passed": "✓", "updated": "✓", "unchanged": "·", "failed": "✗", "error": "!"}
_COLOR = {"passed": "green", "updated": "green", "unchanged": None, "failed": "red", "error": "red"}


@click.command()
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="The manifest (default: onnxbridge.toml, or [tool.onnxbridge] in pyproject.toml, in this folder or a parent).",
)
@click.option("--model", "models", multiple=True, metavar="NAME", help="Check only this model (repeatable).")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Check models in N parallel processes (0: one per CPU; default 1). With --executor ray: "
    "the CPUs of the local Ray instance (default: all).",
)
@click.option(
    "--executor",
    default="local",
    show_default=True,
    metavar="|".join(EXECUTORS.names()) + "[:ADDRESS]",
    help="Where each model is checked: "
    + "; ".join(f"{k.name}: {k.summary}" for k in EXECUTORS)
    + ". ray:HOST:PORT, ray:auto or ray:ray://HOST:10001 names a running cluster; ray needs "
    "onnxbridge[ray].",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 10),
    default=2,
    show_default=True,
    metavar="N",
    help="Run a model whose worker died (killed, out of memory) again up to N times (Ray, or --jobs N).",
)
@click.option(
    "--update", is_flag=True, help="Re-export the models and rewrite their ONNX files and fixtures, on purpose."
)
@click.option("--force", is_flag=True, help="Ignore the cache: check every model against its source.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON report (with CI annotations) on stdout.")
def check(config, models, jobs, executor, retries, update, force, as_json) -> int:
    """Check that every declared ONNX model still matches its golden fixtures and its source.

    Each model's golden fixtures are replayed on its committed ONNX file; when its source files,
    manifest entry or the framework / exporter versions changed since the last pass, it is also
    re-checked against its source and re-exported. Results are cached by content hash under
    .onnxbridge/, so an unchanged project is checked in a fraction of a second.

    \b
      onnxbridge check                 # pre-commit hook / CI step
      onnxbridge check --update        # after an intended change: regenerate ONNX + fixtures
      onnxbridge check --json -j 4     # CI: parallel, machine-readable
      onnxbridge check --executor ray:auto --force   # every model, as tasks on a Ray cluster
    """
    from ..gate import check as run_check
    from .render import progress

    try:
        with progress(not as_json) as say:
            report = run_check(
                config,
                models=models,
                jobs=jobs,
                update=update,
                force=force,
                progress=say,
                executor=executor,
                retries=retries,
            )
    except OnnxBridgeError as e:
        if as_json:  # CI still gets something to annotate; the message goes to stderr as well
            click.echo(json.dumps(_error_json(e), indent=2))
        raise
    if as_json:
        click.echo(report.to_json())
    else:
        _print(report)
    return report.exit_code


def _error_json(e: OnnxBridgeError) -> dict:
    from .._version import __version__

    path, line = getattr(e, "path", None), getattr(e, "line", None)
    annotation = {
        "file": str(path) if path else None,
        "line": line or 1,
        "level": "error",
        "title": "onnxbridge check manifest",
        "message": str(e),
    }
    return {
        "onnxbridge_version": __version__,
        "command": "check",
        "passed": False,
        "exit_code": e.exit_code,
        "error": {"message": e.message, "hint": e.hint, "file": annotation["file"], "line": line},
        "models": [],
        "annotations": [annotation],
    }


def _print(report) -> None:
    from ..gate.results import GateStatus

    width = max((len(r.name) for r in report.results), default=0)
    for r in report.results:
        status = r.status.upper() if r.status in (GateStatus.FAILED, GateStatus.ERROR) else r.status.value
        head = click.style(f"{_MARK[r.status]} {r.name:<{width}}  {status:<9}", fg=_COLOR[r.status], bold=not r.ok)
        line = f"{head} {r.message}"
        if r.status in (GateStatus.PASSED, GateStatus.FAILED, GateStatus.ERROR) and r.reasons:
            line += f" [{'; '.join(r.reasons)}]"
        if r.seconds >= 0.05:
            line += f" ({r.seconds:.1f} s)"
        click.echo(line)
        if not r.ok:
            click.echo(f"  {' ' * width}{r.where}" + (f": {r.hint}" if r.hint else ""))
    counts = ", ".join(f"{n} {s}" for s, n in report.counts.items() if n)
    click.echo(f"{len(report.results)} model(s): {counts} in {report.seconds:.2f} s")
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
