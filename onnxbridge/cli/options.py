"""Options shared by several subcommands, so each is spelled once."""

from __future__ import annotations

from collections.abc import Callable

import click

PROVIDER_CHOICE = click.Choice(["auto", "cpu", "cuda", "tensorrt"], case_sensitive=False)


def _stack(*decorators: Callable) -> Callable:
    def apply(f: Callable) -> Callable:
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


source_options = _stack(
    click.option("--input", "inputs", multiple=True, metavar="NAME:DIMS[:DTYPE]",
                 help="Model input; a name in DIMS is a dynamic axis (repeatable)."),
    click.option("--framework", type=click.Choice(["pytorch", "tensorflow", "keras"]), default=None,
                 help="Override the framework detected from SOURCE."),
    click.option("--trust-model", is_flag=True,
                 help="Trust the model file: allow pickled objects (.pt2) and code (Keras Lambda layers)."),
)

validate_options = _stack(
    click.option("--provider", type=PROVIDER_CHOICE, default="auto", show_default=True,
                 help="Where the ONNX model runs; an explicit provider that does not start is an error."),
    click.option("--atol", type=float, default=None, help="Absolute tolerance (default: by dtype)."),
    click.option("--rtol", type=float, default=None, help="Relative tolerance (default: by dtype)."),
    click.option("--tol", "tolerances", multiple=True, metavar="NAME=ATOL[,RTOL]",
                 help="Tolerance for one output, over --atol/--rtol and the dtype default (repeatable)."),
    click.option("--fallback", type=click.Choice(["warn", "fail"], case_sensitive=False), default="warn",
                 show_default=True,
                 help="When nodes fall back from the CUDA / TensorRT provider to CPU: warn, or fail (exit 2)."),
    click.option("--seed", type=int, default=0, show_default=True, help="Seed for generated inputs."),
    click.option("--inputs", "inputs_file", type=click.Path(dir_okay=False), default=None,
                 help="Real input data (.npz) instead of generated inputs."),
    click.option("--save-inputs", type=click.Path(dir_okay=False), default=None,
                 help="Write the inputs used (.npz golden fixture)."),
    click.option("--save-outputs", type=click.Path(dir_okay=False), default=None,
                 help="Write the reference outputs (.npz golden fixture)."),
)

report_options = _stack(
    click.option("--report", "reports", multiple=True, type=click.Path(dir_okay=False),
                 help="Write a report: .json, .md or .html (repeatable)."),
    click.option("--json", "as_json", is_flag=True, help="Print the JSON report on stdout instead of a summary."),
)

optimize_options = _stack(
    click.option("--optimize", "optimize", type=click.Choice(["cpu", "cuda"], case_sensitive=False), default=None,
                 help="Save ONNX Runtime's offline graph optimisations for this provider (parity-checked)."),
    click.option("--fuse-transformer", "fuse_transformer", type=click.Choice(["auto", "bert", "gpt2", "vit"],
                 case_sensitive=False), default=None,
                 help="Fuse attention / layer norm / GELU into ONNX Runtime ops (parity-checked)."),
)
