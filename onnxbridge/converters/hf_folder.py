"""A Hugging Face model folder, as ``save_pretrained`` writes it, read without network and without
unpickling: the weights files (safetensors, sharded or not; a pickled ``pytorch_model.bin`` only with
``--trust-model``), the task the config's ``architectures`` name (or ``--task``), and the inputs the
config and the processor's preprocessing config describe (:mod:`.hf_inputs`), the folder's own model
code (``auto_map``) only with ``--trust-model``; every weights file is checked before it is loaded
(:mod:`.hf_weights`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, UnsafeInputError, UsageError
from .hf_inputs import FolderInputs, input_specs, merge_inputs
from .hf_weights import check_index, read_safetensors_header

__all__ = [
    "TASKS",
    "CustomClass",
    "FolderInputs",
    "HfFolder",
    "input_specs",
    "merge_inputs",
    "model_class",
    "offline",
    "read_folder",
]

CONFIG = "config.json"
PREPROCESSOR = "preprocessor_config.json"
SAFETENSORS, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
PICKLE, PICKLE_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
_OTHER_WEIGHTS = ("tf_model.h5", "flax_model.msgpack")

# --task -> the transformers Auto class that builds the model for it
TASKS: dict[str, str] = {
    "feature-extraction": "AutoModel",
    "fill-mask": "AutoModelForMaskedLM",
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "multiple-choice": "AutoModelForMultipleChoice",
    "text-generation": "AutoModelForCausalLM",
    "text2text-generation": "AutoModelForSeq2SeqLM",
    "image-classification": "AutoModelForImageClassification",
    "automatic-speech-recognition": "AutoModelForSpeechSeq2Seq",
    "ctc": "AutoModelForCTC",
    "audio-classification": "AutoModelForAudioClassification",
}


@dataclass(frozen=True)
class CustomClass:
    """One entry of config.json's ``auto_map``: the Auto class it serves and the folder's own code."""

    auto: str  # "AutoConfig", "AutoModelForSequenceClassification", ...
    file: str  # "modeling_tiny.py", in the folder
    name: str  # the class that file defines


@dataclass(frozen=True)
class HfFolder:
    """What the folder holds: its config, the processor's preprocessing config, the weights files,
    and the classes of its own code that config.json asks for (loaded only with ``--trust-model``)."""

    path: Path
    config: dict[str, Any]
    preprocessor: dict[str, Any] = field(default_factory=dict)
    weights: tuple[Path, ...] = ()
    safetensors: bool = True
    custom: tuple[CustomClass, ...] = ()


def _json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise InputError(
            f"{path}: unreadable {what} ({type(e).__name__}: {e})",
            f"{path.name} must be the JSON file save_pretrained writes",
        ) from e
    if not isinstance(data, dict):
        raise InputError(f"{path}: {what} is not a JSON object", f"{path.name} must be the file save_pretrained writes")
    return data


def _shards(folder: Path, index: str) -> tuple[Path, ...]:
    """The shard files an index names; every one must be there (and, for safetensors, hold what it says)."""
    data = _json(folder / index, "weights index")
    weight_map = data.get("weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise InputError(
            f"{folder / index} has no weight_map of tensor -> shard file names",
            "re-save the model with save_pretrained",
        )
    names = sorted(set(weight_map.values()))
    if not names:
        raise InputError(f"{folder / index} names no weights file", "re-save the model with save_pretrained")
    missing = [n for n in names if Path(n).name != n or not (folder / n).is_file()]
    if missing:
        raise InputError(
            f"{folder}: weights shard {missing[0]} (named in {index}) is missing",
            "copy every shard save_pretrained wrote into the folder",
        )
    if index == SAFETENSORS_INDEX:
        check_index(folder / index, weight_map, {n: read_safetensors_header(folder / n) for n in names})
    return tuple(folder / n for n in names)


def _weights(folder: Path, trust: bool) -> tuple[tuple[Path, ...], bool]:
    """(weights files, safetensors?); pickles only with ``trust``."""
    if (folder / SAFETENSORS_INDEX).is_file():
        return _shards(folder, SAFETENSORS_INDEX), True
    if (folder / SAFETENSORS).is_file():
        read_safetensors_header(folder / SAFETENSORS)
        return (folder / SAFETENSORS,), True
    pickled = next((n for n in (PICKLE_INDEX, PICKLE) if (folder / n).is_file()), None)
    if pickled is not None:
        if not trust:
            raise UnsafeInputError(
                f"{folder}: the weights are a pickle ({pickled}), which can run code when loaded",
                "convert them to model.safetensors, or pass --trust-model if you trust the folder",
            )
        return (_shards(folder, PICKLE_INDEX) if pickled == PICKLE_INDEX else (folder / PICKLE,)), False
    other = [n for n in _OTHER_WEIGHTS if (folder / n).is_file()]
    if other:
        raise InputError(
            f"{folder} holds {other[0]} only: TensorFlow / Flax weights",
            "save the PyTorch model (model.safetensors) with save_pretrained",
        )
    raise InputError(
        f"{folder}: no weights file ({SAFETENSORS}, {SAFETENSORS_INDEX} or {PICKLE})",
        "save the model with save_pretrained into this folder",
    )


def _custom_code(folder: Path, config: dict[str, Any], trust: bool) -> tuple[CustomClass, ...]:
    """The model classes config.json's ``auto_map`` takes from the folder's own code (AutoConfig and
    AutoModel* entries; a tokenizer's are not loaded here). Without ``trust``: refused, naming the files."""
    auto_map = config.get("auto_map")
    if auto_map is None:
        return ()
    where = folder / CONFIG
    if not isinstance(auto_map, dict):
        raise InputError(f"{where}: auto_map is not an object", "remove it, or re-save the model")
    found: list[CustomClass] = []
    for auto, ref in auto_map.items():
        if not (auto == "AutoConfig" or auto.startswith("AutoModel")):
            continue
        if not isinstance(ref, str) or "." not in ref:
            raise InputError(
                f"{where}: auto_map[{auto!r}] = {str(ref)[:80]} is not 'module.Class'",
                "remove the entry, or re-save the model with save_pretrained",
            )
        if "--" in ref:
            raise InputError(
                f"{where}: auto_map[{auto!r}] = {ref!r} names code in another repository",
                "onnxbridge downloads nothing: copy that code into the folder and name it there",
            )
        module, name = ref.rsplit(".", 1)
        found.append(CustomClass(auto, module.replace(".", "/") + ".py", name))
    if not found:
        return ()
    files = sorted({c.file for c in found})
    if not trust:
        classes = ", ".join(f"{c.name} ({c.file})" for c in found)
        raise UnsafeInputError(
            f"{where}: auto_map asks for the folder's own code: {classes}; loading it runs {', '.join(files)}",
            "read that code and pass --trust-model to run it (onnxbridge neither runs it nor swaps in a stock "
            "class without your consent)",
        )
    absent = [f for f in files if Path(f).is_absolute() or ".." in Path(f).parts or not (folder / f).is_file()]
    if absent:
        raise InputError(
            f"{where}: auto_map names {absent[0]}, which is not in the folder",
            "copy the model's code files into the folder beside config.json",
        )
    return tuple(found)


def read_folder(path: Path, trust: bool = False) -> HfFolder:
    """The folder's config, preprocessing config and weights files; every problem names the file."""
    if not (path / CONFIG).is_file():
        raise InputError(f"{path}: {CONFIG} is missing", "a Hugging Face model folder holds config.json")
    config = _json(path / CONFIG, "model config")
    if not isinstance(config.get("model_type"), str):
        raise InputError(f"{path / CONFIG} has no model_type", "not a transformers config; re-save the model")
    custom = _custom_code(path, config, trust)
    pre = _json(path / PREPROCESSOR, "preprocessing config") if (path / PREPROCESSOR).is_file() else {}
    weights, safe = _weights(path, trust)
    return HfFolder(path, config, pre, weights, safe, custom)


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """No hub access while the folder is read: HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE for the duration
    (the loaders are also called with ``local_files_only=True``)."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    before = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _custom_model_class(folder: HfFolder, task: str | None) -> tuple[Any, str] | None:
    """The Auto class that loads the folder's own model class (``--trust-model`` given), or None when
    auto_map names no model class for this task."""
    import transformers

    models = [c for c in folder.custom if c.auto != "AutoConfig"]
    archs = folder.config.get("architectures") or []
    if task is not None:
        if task not in TASKS:
            raise UsageError(f"unknown --task {task!r}", f"tasks: {', '.join(TASKS)}")
        chosen = next((c for c in models if c.auto == TASKS[task]), None)
    else:
        chosen = next((c for c in models if c.name in archs), models[0] if models else None)
    if chosen is None:
        return None
    return (
        getattr(transformers, chosen.auto),
        f"{chosen.name} from the folder's own {chosen.file} (auto_map, run with --trust-model)",
    )


def model_class(folder: HfFolder, task: str | None) -> tuple[Any, str]:
    """(the transformers class to load, a note saying which task and why)."""
    import transformers

    custom = _custom_model_class(folder, task) if folder.custom else None
    if custom is not None:
        return custom
    if task is not None:
        if task not in TASKS:
            raise UsageError(f"unknown --task {task!r}", f"tasks: {', '.join(TASKS)}")
        return getattr(transformers, TASKS[task]), f"task {task} (--task)"
    archs = folder.config.get("architectures") or []
    arch = archs[0] if archs and isinstance(archs[0], str) else None
    cls = getattr(transformers, arch, None) if arch else None
    if cls is None:
        why = f"architecture {arch} is not in transformers {transformers.__version__}" if arch else "no architectures"
        return transformers.AutoModel, f"task feature-extraction ({why} in config.json; pass --task to choose)"
    return cls, f"{arch} (from config.json's architectures)"
