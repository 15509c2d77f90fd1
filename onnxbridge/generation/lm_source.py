"""The source of a with-past export: a Hugging Face folder, or a Python source (``file.py:NAME`` /
``package.module:NAME``) whose object or zero-argument factory gives a transformers causal LM (or
``(model, tokenizer)``). A Python source is the user's own code, named on the command line: it is imported as
for every other task (the contract's SOURCE forms); ``--trust-model`` is about code inside model folders."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError

__all__ = ["LmSource", "auto_map_files", "is_python_source", "load_python_lm", "write_source_files"]

_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_][\w.]*$")


def is_python_source(source: str) -> bool:
    """``file.py:NAME`` or ``package.module:NAME`` (read from the string alone, nothing imported)."""
    head, sep, attr = source.rpartition(":")
    if Path(source).exists():
        return False
    return bool(sep and attr and head.endswith(".py")) or bool(_MODULE.match(source))


@dataclass(frozen=True)
class LmSource:
    """The loaded LM (float32, eval mode, cache on); ``folder`` the Hugging Face folder it came from (None
    for a Python source); ``tokenizer`` one a Python source gave with its model."""

    model: Any = field(repr=False)
    folder: Path | None
    tokenizer: Any = field(default=None, repr=False)


def load_python_lm(source: str) -> LmSource:
    """The transformers causal LM a Python source gives."""
    from ..sources import load_python_object, parse_source, resolve_factory

    ref = parse_source(source, framework="pytorch")
    model, extra = resolve_factory(load_python_object(ref), source)
    from transformers import GenerationMixin, PreTrainedModel, PreTrainedTokenizerBase

    if not isinstance(model, PreTrainedModel) or not isinstance(model, GenerationMixin):
        raise UsageError(
            f"{source} gives a {type(model).__name__}, not a transformers causal LM (a PreTrainedModel that "
            "can generate)",
            "return e.g. LlamaForCausalLM(config) from NAME, or export without cache: drop --task",
        )
    if model.config.is_encoder_decoder:
        raise UsageError(
            f"{source} gives an encoder-decoder ({type(model).__name__})",
            "save it with save_pretrained and convert that folder with --task text2text-generation-with-past",
        )
    tokenizer = extra if isinstance(extra, PreTrainedTokenizerBase) else None
    model = model.float().eval()
    model.config.use_cache = True
    return LmSource(model, None, tokenizer)


def write_source_files(lm: LmSource, dst: Path) -> tuple[str, ...]:
    """For a Python source: config.json from ``model.config`` (its class named in ``architectures``),
    generation_config.json and the tokenizer it gave, into ``dst``; the names written."""
    model = lm.model
    config = copy.deepcopy(model.config)
    if not config.architectures:
        config.architectures = [type(model).__name__]
    config.to_json_file(dst / "config.json")
    model.generation_config.to_json_file(dst / "generation_config.json")
    written = ["config.json (from model.config)", "generation_config.json (from the model)"]
    if lm.tokenizer is not None:
        before = {p.name for p in dst.iterdir()}
        lm.tokenizer.save_pretrained(dst)
        written += sorted({p.name for p in dst.iterdir()} - before)
    return tuple(written)


def auto_map_files(folder: Path, config: dict[str, Any]) -> tuple[str, ...]:
    """The folder's own code files config.json's ``auto_map`` names (``module.Class`` or
    ``repo--module.Class``; tokenizers give a list), those that exist."""
    refs: list[str] = []
    for v in (config.get("auto_map") or {}).values():
        refs += [r for r in (v if isinstance(v, list) else [v]) if isinstance(r, str)]
    names = {r.split("--")[-1].rpartition(".")[0] + ".py" for r in refs}
    return tuple(sorted(n for n in names if (folder / n).is_file()))
