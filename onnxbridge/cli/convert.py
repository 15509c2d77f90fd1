"""``onnxbridge convert SOURCE -o OUT.onnx``."""

from __future__ import annotations

import click

from .options import (
    convert_variant_options,
    export_options,
    optimize_options,
    parity_options,
    report_options,
    simplifier_option,
)
from .render import finish, progress
from .util import check_report_paths


@click.command()
@click.argument("source")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(),
    help="The ONNX file to write (a folder for a with-past export: model.onnx, configs, tokenizer).",
)
@export_options(routes=True)
@click.option("--no-simplify", is_flag=True, help="Skip simplification.")
@click.option("--no-validate", is_flag=True, help="Skip the parity check.")
@click.option(
    "--external-data", is_flag=True, help="Write the weights to OUT.onnx.data beside the graph (automatic over 2 GB)."
)
@simplifier_option
@optimize_options
@parity_options()
@convert_variant_options
@click.option(
    "--new-tokens",
    type=int,
    default=32,
    show_default=True,
    help="With-past tasks: greedy tokens per prompt in the generation parity check.",
)
@click.option(
    "--no-merged-decoder",
    is_flag=True,
    help="Encoder-decoders: skip decoder_model_merged.onnx (both decoders behind one If, shared weights).",
)
@report_options
def convert(
    source: str,
    output: str,
    export,
    no_simplify: bool,
    no_validate: bool,
    external_data: bool,
    simplifier: str,
    optimize,
    parity,
    variants,
    new_tokens: int,
    no_merged_decoder: bool,
    reports,
    as_json: bool,
) -> int:
    """Export SOURCE to ONNX, simplify it, and validate it against SOURCE.

    SOURCE is file.py:NAME, package.module:NAME or a model file or folder of a registered converter
    (model.pt2, a SavedModel folder, .keras, .h5, .tflite). Example:

      onnxbridge convert models.py:resnet -o resnet.onnx --input x:batch,3,224,224

    A causal-LM Hugging Face folder with -o a folder is exported with its KV cache
    (--task text-generation-with-past, optimum's layout) and judged token by token:

      onnxbridge convert my-llama/ -o my-llama-onnx/ --new-tokens 32
    """
    from .. import api
    from ..options import ConvertOptions
    from .variant import variants_exit

    check_report_paths(reports, source, output)
    options = ConvertOptions(
        export,
        parity,
        optimize,
        simplify=not no_simplify,
        validate=not no_validate,
        external_data=external_data,
        simplifier=simplifier,
        variants=variants,
        new_tokens=new_tokens,
        merged_decoder=not no_merged_decoder,
    )
    with progress(not as_json) as say:
        report = api.convert_with(source, output, options, progress=say)
    return variants_exit(report, finish(report, reports, as_json))
