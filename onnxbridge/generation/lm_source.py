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

from .._util import first_line, quiet
from ..errors import InputError, UsageError

__all__ = [
    "LmSource",
    "auto_map_files",
    "is_python_source",
    "load_causal_lm",
    "load_lm_source",
    "load_python_lm",
    "pad_id",
    "write_source_files",
]

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


def load_causal_lm(path: Path, trust: bool = False, seq2seq: bool = False, speech: bool = False) -> Any:
    """The folder's causal LM (or sequence-to-sequence LM) in float32, eval mode, with its cache on;
    offline, safetensors unless trusted."""
    from ..converters.hf_folder import offline, read_folder

    folder = read_folder(path, trust=trust)
    if folder.config.get("auto_map") and not trust:
        raise UsageError(
            f"{path}: config.json's auto_map names the folder's own modeling code",
            "pass --trust-model if you trust the folder",
        )
    with offline():
        import torch
        import transformers

        auto = (
            transformers.AutoModelForSpeechSeq2Seq
            if speech
            else transformers.AutoModelForSeq2SeqLM
            if seq2seq
            else transformers.AutoModelForCausalLM
        )
        try:
            with quiet():
                model = auto.from_pretrained(
                    path,
                    local_files_only=True,
                    use_safetensors=folder.safetensors,
                    dtype=torch.float32,
                    trust_remote_code=trust,
                )
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as e:
            kind = "sequence-to-sequence" if seq2seq else "causal"
            raise InputError(
                f"{path}: transformers could not load a {kind} LM ({first_line(e, 300)})",
                "check config.json and the weights; a with-past task needs an LM head",
            ) from e
    model.config.use_cache = True
    return model.eval()


def load_lm_source(source: str, trust: bool, *, seq2seq: bool = False, speech: bool = False) -> LmSource:
    """The LM behind SOURCE: a Hugging Face folder's, or a Python source's (only a causal LM;
    ``trust`` is for a folder's own code)."""
    if not is_python_source(source):
        return LmSource(load_causal_lm(Path(source), trust, seq2seq=seq2seq, speech=speech), Path(source))
    if seq2seq or speech:
        raise UsageError(
            f"{source}: a with-past encoder-decoder is exported from a Hugging Face folder only",
            "save the model with save_pretrained and convert that folder",
        )
    return load_python_lm(source)


def pad_id(model: Any) -> int:
    """The id generation pads with: the generation config's pad (or first EOS), else the config's, else 0."""
    g = model.generation_config
    for v in (g.pad_token_id, g.eos_token_id, model.config.get_text_config().pad_token_id):
        if isinstance(v, list):
            v = v[0] if v else None
        if isinstance(v, int):
            return v
    return 0
