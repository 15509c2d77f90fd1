"""Options shared by several subcommands, spelled once, and grouped into the option objects of
:mod:`onnxbridge.options`: a command receives ``export``, ``parity``, ``optimize`` or ``bench``, each
built (and checked) once from its flags, instead of a parameter per flag.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, overload

import click

from ..options import (
    CALIBRATION_METHODS,
    FALLBACK_POLICIES,
    FUSIONS,
    IO_BINDING_MODES,
    OPT_LEVELS,
    OPTIMIZE_TARGETS,
    PROVIDERS,
    REFERENCE_DEVICES,
    SIMPLIFIERS,
    BenchConfig,
    ExportOptions,
    LocalizeOptions,
    OptimizeOptions,
    ParityConfig,
    TimingPlan,
    Tolerances,
    VariantOptions,
)
from ..variants.registry import KINDS

__all__ = [
    "PROVIDER_CHOICE",
    "export_options",
    "parity_options",
    "optimize_options",
    "bench_options",
    "localize_options",
    "report_options",
    "simplifier_option",
    "convert_variant_options",
    "variant_options",
]

PROVIDER_CHOICE = click.Choice(PROVIDERS, case_sensitive=False)


class FrameworkType(click.ParamType):
    """A framework name checked against the converter registry (plugins included) when it is used,
    so ``--help`` loads no registry."""

    name = "framework"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "NAME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..converters.registry import default_registry

        names = default_registry().names()
        if value not in names:
            self.fail(f"{value!r} is not a registered framework (known: {', '.join(names)})", param, ctx)
        return value


def group(name: str, build: Callable[..., Any], *options: Callable) -> Callable:
    """Add ``options`` to a command and hand the command one ``name=build(**their values)`` instead."""

    def decorate(f: Callable) -> Callable:
        params: list[str] = []

        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            values = {p: kwargs.pop(p) for p in params}
            return f(*args, **{name: build(**values)}, **kwargs)

        for option in reversed(options):
            wrapper = option(wrapper)
        # the parameters the options declared, read back from click's record of them
        declared = getattr(wrapper, "__click_params__", [])
        params.extend(p.name for p in declared[len(declared) - len(options) :])
        return wrapper

    return decorate


def _export(inputs=(), framework=None, trust_model=False, task=None, opset=None, routes=()) -> ExportOptions:
    ctx = click.get_current_context(silent=True)
    debug = bool(ctx is not None and isinstance(ctx.obj, dict) and ctx.obj.get("debug"))
    return ExportOptions(tuple(inputs), framework, opset, tuple(routes), trust_model, task, debug)


_SOURCE = (
    click.option(
        "--input",
        "inputs",
        multiple=True,
        metavar="NAME:DIMS[:DTYPE]",
        help="Model input; a name in DIMS is a dynamic axis, NAME=LO..HI one valid on that range (repeatable).",
    ),
    click.option(
        "--framework",
        type=FrameworkType(),
        default=None,
        help="Override the framework detected from SOURCE (a registered converter's name).",
    ),
    click.option(
        "--trust-model",
        is_flag=True,
        help="Trust the model file: allow pickled objects (.pt2, pytorch_model.bin) and code (Keras Lambda layers).",
    ),
    click.option(
        "--task",
        default=None,
        metavar="TASK",
        help="Hugging Face folders: the task, i.e. the model head (default: config.json's architectures).",
    ),
)
_ROUTES = (
    click.option("--opset", type=int, default=None, help="Target ONNX opset (default: the exporter's)."),
    click.option(
        "--route",
        "routes",
        multiple=True,
        metavar="NAME",
        help="Export route(s) to try, in order (e.g. torch.export/dynamo, torchscript). Default: all.",
    ),
)


def export_options(*, routes: bool = False) -> Callable:
    """``--input --framework --trust-model --task`` (and ``--opset --route`` for ``convert``) as ``export``."""
    return group("export", _export, *_SOURCE, *(_ROUTES if routes else ()))


def _parity(
    provider="auto",
    atol=None,
    rtol=None,
    tolerances=(),
    fallback="warn",
    seed=0,
    inputs_file=None,
    save_inputs=None,
    save_outputs=None,
    expected_file=None,
    oracle_multiple=None,
) -> ParityConfig:
    return ParityConfig(
        provider,
        Tolerances.build(atol, rtol, tolerances, oracle_multiple),
        fallback,
        seed,
        inputs_file,
        expected_file,
        save_inputs,
        save_outputs,
    )


_PARITY = (
    click.option(
        "--provider",
        type=PROVIDER_CHOICE,
        default="auto",
        show_default=True,
        help="Where the ONNX model runs; an explicit provider that does not start is an error.",
    ),
    click.option("--atol", type=float, default=None, help="Absolute tolerance (default: by dtype)."),
    click.option("--rtol", type=float, default=None, help="Relative tolerance (default: by dtype)."),
    click.option(
        "--tol",
        "tolerances",
        multiple=True,
        metavar="NAME=ATOL[,RTOL]",
        help="Tolerance for one output, over --atol/--rtol and the dtype default (repeatable).",
    ),
    click.option(
        "--oracle-multiple",
        type=float,
        default=None,
        metavar="X",
        help="A float32 output that fails the tolerance passes when it is within X times the source's "
        "own float32 distance to the source run in float64 (default 2; 0: off).",
    ),
    click.option(
        "--fallback",
        type=click.Choice(FALLBACK_POLICIES, case_sensitive=False),
        default="warn",
        show_default=True,
        help="When nodes fall back from the CUDA / TensorRT provider to CPU: warn, or fail (exit 2).",
    ),
    click.option("--seed", type=int, default=0, show_default=True, help="Seed for generated inputs."),
    click.option(
        "--inputs",
        "inputs_file",
        type=click.Path(dir_okay=False),
        default=None,
        help="Real input data (.npz) instead of generated inputs.",
    ),
    click.option(
        "--save-inputs",
        type=click.Path(dir_okay=False),
        default=None,
        help="Write the inputs used (.npz golden fixture).",
    ),
    click.option(
        "--save-outputs",
        type=click.Path(dir_okay=False),
        default=None,
        help="Write the reference outputs (.npz golden fixture).",
    ),
)
_EXPECTED = click.option(
    "--expected",
    "expected_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Golden outputs (.npz) to replay against MODEL, with --inputs (alone when it holds the inputs too).",
)


def parity_options(*, expected: bool = False) -> Callable:
    """The validation flags as ``parity`` (with ``--expected`` for ``validate``)."""
    return group("parity", _parity, *_PARITY, *((_EXPECTED,) if expected else ()))


optimize_options = group(
    "optimize",
    lambda optimize=None, fuse_transformer=None: OptimizeOptions(optimize, fuse_transformer),
    click.option(
        "--optimize",
        "optimize",
        type=click.Choice(OPTIMIZE_TARGETS, case_sensitive=False),
        default=None,
        help="Save ONNX Runtime's offline graph optimisations for this provider (parity-checked).",
    ),
    click.option(
        "--fuse-transformer",
        "fuse_transformer",
        type=click.Choice(FUSIONS, case_sensitive=False),
        default=None,
        help="Fuse attention / layer norm / GELU into ONNX Runtime ops (parity-checked).",
    ),
)


_LOCALIZE = (
    click.option(
        "--budget-mb",
        type=float,
        default=64.0,
        show_default=True,
        help="Memory for intermediate values held at once while localising (more: fewer passes).",
    ),
    click.option(
        "--repro-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Folder for the minimal failing subgraph (MODEL.repro.onnx + .npz); default: the --report's.",
    ),
)


def localize_options(*, flag: bool = False) -> Callable:
    """``--budget-mb --repro-dir`` as ``localize`` (a :class:`LocalizeOptions`); with ``flag`` (validate),
    ``--localize`` turns it on, else ``localize`` is None."""
    if not flag:
        return group(
            "localize", lambda budget_mb=64.0, repro_dir=None: LocalizeOptions(budget_mb, repro_dir), *_LOCALIZE
        )

    def build(localize=False, budget_mb=64.0, repro_dir=None) -> LocalizeOptions | None:
        return LocalizeOptions(budget_mb, repro_dir) if localize else None

    return group(
        "localize",
        build,
        click.option(
            "--localize", is_flag=True, help="When parity fails, say where: the first diverging module / layer / node."
        ),
        *_LOCALIZE,
    )


@overload
def with_repro_dir(options: LocalizeOptions, reports: tuple[str, ...]) -> LocalizeOptions: ...
@overload
def with_repro_dir(options: None, reports: tuple[str, ...]) -> None: ...
def with_repro_dir(options: LocalizeOptions | None, reports: tuple[str, ...]) -> LocalizeOptions | None:
    """The repro goes next to the first report when no --repro-dir is given."""
    if options is None or options.repro_dir is not None or not reports:
        return options
    from dataclasses import replace
    from pathlib import Path

    return replace(options, repro_dir=Path(reports[0]).resolve().parent)


def _int_list(text: str | None, flag: str) -> tuple[int, ...]:
    from ..errors import UsageError

    out = []
    for part in (text or "").replace(" ", "").split(","):
        if not part:
            continue
        try:
            out.append(int(part))
        except ValueError:
            raise UsageError(f"{flag} {text!r}: {part!r} is not an integer", f"e.g. {flag} 1,8") from None
    return tuple(out)


def _providers(values: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values or ("auto",):
        for p in v.split(","):
            p = p.strip().lower()
            if p:
                PROVIDER_CHOICE.convert(p, None, None)  # raises click.BadParameter (exit 2) on unknown names
                out.append(p)
    return tuple(out)


def _axes(values: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    from ..errors import UsageError

    out: dict[str, int] = {}
    for v in values:
        name, sep, size = v.partition("=")
        if not sep or not name.strip() or not size.strip().lstrip("-").isdigit():
            raise UsageError(f"--axis {v!r} is not NAME=SIZE", "e.g. --axis seq=128")
        out[name.strip()] = int(size)
    return tuple(out.items())


def _bench(
    providers=(),
    batch=None,
    axes=(),
    warmup=10,
    runs=100,
    duration=None,
    threads=None,
    opt_level="all",
    io_binding="auto",
    reference_device="auto",
    seed=0,
    inputs_file=None,
) -> BenchConfig:
    return BenchConfig(
        _providers(providers),
        _int_list(batch, "--batch"),
        _axes(axes),
        TimingPlan(warmup=warmup, runs=runs, duration_s=duration),
        threads,
        opt_level,
        io_binding,
        reference_device,
        seed,
        inputs_file,
    )


bench_options = group(
    "config",
    _bench,
    click.option(
        "--provider",
        "providers",
        multiple=True,
        metavar="auto|cpu|cuda|tensorrt",
        help="Provider(s) to measure: repeat or comma-separate (default auto). One that does not start is an error.",
    ),
    click.option(
        "--batch", "batch", default=None, metavar="N[,N...]", help="Batch sizes to sweep, e.g. 1,8 (default 1)."
    ),
    click.option("--axis", "axes", multiple=True, metavar="NAME=SIZE", help="Size of a dynamic axis, e.g. seq=128."),
    click.option("--warmup", type=int, default=10, show_default=True, help="Untimed runs first."),
    click.option("--runs", type=int, default=100, show_default=True, help="Timed runs (ignored with --duration)."),
    click.option("--duration", type=float, default=None, metavar="SECONDS", help="Time budget instead of --runs."),
    click.option("--threads", type=int, default=None, help="Intra-op threads (ONNX Runtime and the source framework)."),
    click.option(
        "--opt-level",
        type=click.Choice(OPT_LEVELS, case_sensitive=False),
        default="all",
        show_default=True,
        help="ONNX Runtime graph optimisation level of the session.",
    ),
    click.option(
        "--io-binding",
        type=click.Choice(IO_BINDING_MODES, case_sensitive=False),
        default="auto",
        show_default=True,
        help="Bind inputs/outputs on the device (auto: on for CUDA / TensorRT).",
    ),
    click.option(
        "--reference-device",
        type=click.Choice(REFERENCE_DEVICES, case_sensitive=False),
        default="auto",
        show_default=True,
        help="Where --source runs (auto: CUDA when ONNX Runtime runs on a GPU).",
    ),
    click.option("--seed", type=int, default=0, show_default=True, help="Seed for generated inputs."),
    click.option(
        "--inputs",
        "inputs_file",
        type=click.Path(dir_okay=False),
        default=None,
        help="Real input data (.npz; its first case) instead of generated inputs.",
    ),
)


def report_options(f: Callable) -> Callable:
    """``--report FILE`` (repeatable) and ``--json``."""
    f = click.option("--json", "as_json", is_flag=True, help="Print the JSON report on stdout instead of a summary.")(f)
    return click.option(
        "--report",
        "reports",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="Write a report: .json, .md or .html (repeatable).",
    )(f)


simplifier_option = click.option(
    "--simplifier",
    type=click.Choice(SIMPLIFIERS, case_sensitive=False),
    default="onnxsim",
    show_default=True,
    help="Simplifier: one tool, or auto (onnxsim, onnxslim and the onnxscript optimizer where installed; the "
    "fewest nodes that keep parity without growing the weights).",
)

_VARIANT_GATE = (
    click.option(
        "--budget",
        "budget",
        multiple=True,
        metavar="METRIC=VALUE[,...]",
        help="Accuracy limits over each variant's defaults, e.g. cosine=0.999,top1_decisive=0.99 "
        "(metrics: cosine, cosine_min, top1, top1_decisive, top5, max_abs, nonfinite; with-past folders: "
        "token_agreement, logit_drift, perplexity_ratio).",
    ),
    click.option(
        "--min-speedup",
        type=float,
        default=None,
        metavar="X",
        help="Required p50 speed-up over fp32 on the provider (default 1.0; the ORT format is not gated; 0: off).",
    ),
    click.option("--write-failed", is_flag=True, help="Write variants that fail their gate too, marked FAIL."),
    click.option(
        "--calibration-method",
        type=click.Choice(CALIBRATION_METHODS, case_sensitive=False),
        default="minmax",
        show_default=True,
        help="int8-static calibration.",
    ),
    click.option(
        "--engine-cache",
        type=click.Path(file_okay=False),
        default=None,
        help="TensorRT engine cache folder (default: .onnxbridge-trt-cache beside the outputs).",
    ),
    click.option(
        "--eval-text",
        type=click.Path(dir_okay=False),
        default=None,
        help="With-past folders: the text copies are judged on (prompts, perplexity), through the folder's "
        "tokenizer (default: a bundled English text).",
    ),
    click.option(
        "--eval-ids",
        type=click.Path(dir_okay=False),
        default=None,
        help="With-past folders without a tokenizer: a file of token ids (spaces or commas) to judge on instead.",
    ),
)


def _kinds(text: str) -> tuple[str, ...]:
    return tuple(k for k in text.split(",") if k.strip())


def _convert_variants(
    variants=None,
    budget=(),
    min_speedup=None,
    write_failed=False,
    calibration_method="minmax",
    engine_cache=None,
    eval_text=None,
    eval_ids=None,
) -> VariantOptions | None:
    if not variants:
        return None
    return VariantOptions(
        _kinds(variants),
        budget=tuple(budget),
        min_speedup=min_speedup,
        write_failed=write_failed,
        calibration_method=calibration_method,
        engine_cache=engine_cache,
        eval_text=eval_text,
        eval_ids=eval_ids,
    )


convert_variant_options = group(
    "variants",
    _convert_variants,
    click.option(
        "--variant",
        "variants",
        default=None,
        metavar="KIND[,KIND...]",
        help=f"Deployment variants to build beside the output, each gated on accuracy and speed: {KINDS.help()}.",
    ),
    *_VARIANT_GATE,
)


def _variant(
    to="",
    provider="cpu",
    output=None,
    out_dir=None,
    inputs_file=None,
    seed=0,
    axes=(),
    warmup=3,
    runs=10,
    rounds=3,
    threads=None,
    budget=(),
    min_speedup=None,
    write_failed=False,
    calibration_method="minmax",
    engine_cache=None,
    eval_text=None,
    eval_ids=None,
    new_tokens=64,
    prompts=8,
) -> VariantOptions:
    return VariantOptions(
        _kinds(to),
        provider,
        tuple(budget),
        min_speedup,
        write_failed,
        out_dir,
        output,
        inputs_file,
        calibration_method,
        seed=seed,
        axis_sizes=_axes(axes),
        timing=TimingPlan(warmup=warmup, runs=runs),
        rounds=rounds,
        threads=threads,
        engine_cache=engine_cache,
        eval_text=eval_text,
        eval_ids=eval_ids,
        new_tokens=new_tokens,
        prompts=prompts,
    )


variant_options = group(
    "options",
    _variant,
    click.option(
        "--to",
        "to",
        required=True,
        metavar="KIND[,KIND...]",
        help=f"Variants to build: {KINDS.help()} (comma-separated).",
    ),
    click.option(
        "--provider",
        type=PROVIDER_CHOICE,
        default="cpu",
        show_default=True,
        help="Where the variants will run: they are judged and timed there.",
    ),
    click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False),
        default=None,
        help="The file to write (one variant only; default MODEL.KIND.onnx beside MODEL; for a with-past "
        "folder, the copy's folder, default FOLDER-KIND beside it).",
    ),
    click.option(
        "--out-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Folder for the variants (default: beside MODEL).",
    ),
    click.option(
        "--inputs",
        "inputs_file",
        type=click.Path(dir_okay=False),
        default=None,
        help="Real inputs (.npz fixtures): even cases calibrate, odd cases judge.",
    ),
    click.option("--seed", type=int, default=0, show_default=True, help="Seed for generated inputs."),
    click.option("--axis", "axes", multiple=True, metavar="NAME=SIZE", help="Size of a dynamic axis, e.g. seq=128."),
    click.option("--warmup", type=int, default=3, show_default=True, help="Untimed runs first."),
    click.option("--runs", type=int, default=10, show_default=True, help="Timed runs per round."),
    click.option("--rounds", type=int, default=3, show_default=True, help="Interleaved timing rounds."),
    click.option("--threads", type=int, default=None, help="ONNX Runtime intra-op threads."),
    click.option(
        "--new-tokens",
        type=int,
        default=64,
        show_default=True,
        help="With-past folders: greedy tokens per prompt the copies are judged on.",
    ),
    click.option(
        "--prompts",
        type=int,
        default=8,
        show_default=True,
        help="With-past folders: prompts cut from the judging text (lengths 8-20 tokens, left-padded).",
    ),
    *_VARIANT_GATE,
)
