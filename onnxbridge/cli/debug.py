"""``onnxbridge debug SOURCE|A.onnx [MODEL.onnx ...]``: where parity breaks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .options import export_options, localize_options, parity_options, report_options, with_repro_dir
from .render import finish, progress
from .util import check_report_paths

if TYPE_CHECKING:
    from ..options import LocalizeOptions


@click.command()
@click.argument("source")
@click.argument("models", nargs=-1, type=click.Path())
@export_options()
@parity_options()
@localize_options()
@click.option(
    "--new-tokens",
    type=int,
    default=32,
    show_default=True,
    help="With a with-past folder as MODEL: steps replayed per prompt (the generation parity's new tokens).",
)
@report_options
def debug(
    source: str,
    models: tuple[str, ...],
    export,
    parity,
    localize: LocalizeOptions,
    new_tokens: int,
    reports,
    as_json: bool,
) -> int:
    """Say where MODELS leave SOURCE: the first stage that breaks parity, the first module / layer / node
    that diverges inside it (with its source line), the per-layer error, and a minimal failing subgraph.

    MODELS are ONNX files in pipeline order (exported, simplified, fp16 ...); each is a stage, and the
    last one also runs on --provider. Without MODELS, SOURCE is exported and simplified in memory.
    Exit 1 when the last model fails parity, 0 when it holds.

    MODEL a with-past folder (convert --task text-generation-with-past) and SOURCE its Hugging Face
    folder (or Python source, with --trust-model): the generation parity's prompts are replayed step by
    step through model.onnx and the source with its cache, and the first (step, layer, key | value) whose
    present leaves the source's is named, with max_abs, row, head and position. Exit 1 when one does.

    \b
      onnxbridge debug models.py:net net.onnx --report where.html
      onnxbridge debug models.py:net exported.onnx simplified.onnx fp16.onnx --repro-dir bug/
      onnxbridge debug original.onnx simplified.onnx
      onnxbridge debug models.py:net --input x:batch,16
      onnxbridge debug my-llama/ my-llama-onnx/ --new-tokens 32
    """
    from .. import api

    check_report_paths(reports, source, *models)
    with progress(not as_json) as say:
        report = api.debug_with(
            source, models, export, parity, with_repro_dir(localize, reports), progress=say, new_tokens=new_tokens
        )
    return finish(report, reports, as_json)
