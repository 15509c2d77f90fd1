"""The ``onnxbridge`` command: a thin click layer over :mod:`onnxbridge.api`.

Subcommands are loaded lazily, so ``onnxbridge --help`` imports no framework.
"""

from __future__ import annotations

import contextlib
import importlib
import sys

import click

from .._version import __version__
from ..errors import EXIT_INTERNAL, EXIT_INTERRUPTED, OnnxBridgeError

__all__ = ["main", "cli"]

# name -> (module, attribute, one-line help shown by --help without importing the module)
COMMANDS = {
    "convert": ("onnxbridge.cli.convert", "convert", "Export SOURCE to ONNX, simplify it, validate it."),
    "simplify": ("onnxbridge.cli.simplify", "simplify", "Simplify an ONNX model, parity-checked against the original."),
    "validate": (
        "onnxbridge.cli.validate",
        "validate",
        "Parity of an ONNX model against its source, another ONNX model or fixtures.",
    ),
    "debug": (
        "onnxbridge.cli.debug",
        "debug",
        "Where parity breaks: first diverging stage, module / layer / node, repro.",
    ),
    "bench": (
        "onnxbridge.cli.bench",
        "bench",
        "Speed on ONNX Runtime (p50/p90/p99, throughput), optionally vs the source.",
    ),
    "inspect": ("onnxbridge.cli.inspect", "inspect_cmd", "Opsets, inputs/outputs, op histogram, parameters, size."),
    "demo": ("onnxbridge.cli.demo", "demo", "The whole pipeline on bundled example models (no downloads)."),
    "variant": (
        "onnxbridge.cli.variant",
        "variant",
        "Deployment variants (fp16, int8, int4, ORT format...) gated on accuracy and speed.",
    ),
    "check": (
        "onnxbridge.cli.check",
        "check",
        "The pre-commit / CI gate: every declared model still matches its source.",
    ),
    "upgrade": (
        "onnxbridge.cli.upgrade",
        "upgrade",
        "Convert an ONNX file to another opset, repaired, simplified, parity-checked.",
    ),
    "generate": (
        "onnxbridge.cli.generate",
        "generate",
        "Generate text from a with-past folder through its KV cache (streamed).",
    ),
    "view": ("onnxbridge.cli.view", "view", "Google's Model Explorer on an ONNX model, with a report's overlays."),
    "frameworks": (
        "onnxbridge.cli.frameworks",
        "frameworks",
        "The frameworks onnxbridge converts from (plugins included).",
    ),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when invoked (or their own --help is asked for)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module, attr, _ = COMMANDS[name]
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in sorted(COMMANDS)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="onnxbridge")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """onnxbridge: PyTorch / TensorFlow / Keras -> verified, simplified, benchmarked ONNX.

    Exit codes: 0 success, 1 parity failed, 2 bad input or usage, 3 conversion failed,
    4 internal error (a bug), 130 interrupted.
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, map OnnxBridgeError to its exit code, no traceback unless --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        rv = cli.main(args=args, prog_name="onnxbridge", standalone_mode=False)
    except OnnxBridgeError as e:
        if debug:
            import traceback

            traceback.print_exc()
        click.echo(f"error: {e.message}", err=True)
        if e.hint:
            click.echo(f"hint: {e.hint}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as e:
        e.show()
        return e.exit_code  # click's usage errors exit 2, as ours do
    except click.exceptions.Exit as e:
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except Exception as e:  # a bug in onnxbridge or a tool below it
        if debug:
            import traceback

            traceback.print_exc()
        click.echo(f"internal error: {type(e).__name__}: {e}", err=True)
        click.echo("hint: rerun with --debug for the traceback, and report it if it looks like a bug", err=True)
        return EXIT_INTERNAL
    return rv if isinstance(rv, int) else 0


def run() -> None:
    """console-script wrapper: run the command, then exit without the interpreter's teardown."""
    exit_now(main())


def exit_now(code: int) -> None:
    """End the process with ``code`` once its output is flushed and every ``atexit`` hook has run, skipping
    the interpreter's teardown: freeing every module of PyTorch, ONNX Runtime and transformers (and their
    thread pools) one object at a time took about 1 s of a 9 s ``convert``, after all work was done."""
    import atexit
    import os

    _flush()
    atexit._run_exitfuncs()  # temporary folders, logging: what the interpreter runs first at exit
    _flush()
    os._exit(code)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe: nothing more can be said on it anyway
            stream.flush()
