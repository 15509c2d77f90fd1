"""Which Hugging Face folders and tasks take the with-past route."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError

__all__ = ["WITH_PAST_TASKS", "is_causal_lm", "is_seq2seq_lm", "is_speech_seq2seq", "task_of", "with_past_task"]

WITH_PAST_TASKS = (
    "text-generation-with-past",
    "text2text-generation-with-past",
    "automatic-speech-recognition-with-past",
)
_LATER: tuple[str, ...] = ()


def is_causal_lm(config: dict) -> bool:
    """config.json names a causal-LM architecture of the installed transformers, or its auto_map names
    the folder's own causal-LM class."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    archs = config.get("architectures") or []
    model_type = config.get("model_type")
    if "AutoModelForCausalLM" in (config.get("auto_map") or {}):  # its own code (run only with --trust-model)
        return True
    return bool(archs) and MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(model_type or "") == archs[0]


def is_seq2seq_lm(config: dict) -> bool:
    """config.json names a sequence-to-sequence LM architecture (T5, BART, Marian...)."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
    )

    archs = config.get("architectures") or []
    return bool(archs) and MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES.get(config.get("model_type") or "") == archs[0]


def is_speech_seq2seq(config: dict) -> bool:
    """config.json names a speech-to-text encoder-decoder (Whisper...)."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES,
    )

    archs = config.get("architectures") or []
    return bool(archs) and MODEL_FOR_SPEECH_SEQ_2_SEQ_MAPPING_NAMES.get(config.get("model_type") or "") == archs[0]


def task_of(config: dict) -> str | None:
    """The with-past task a folder's config.json calls for, or None."""
    if is_causal_lm(config):
        return WITH_PAST_TASKS[0]
    if is_seq2seq_lm(config):
        return WITH_PAST_TASKS[1]
    return WITH_PAST_TASKS[2] if is_speech_seq2seq(config) else None


def with_past_task(source: str, task: str | None, output: str | Path) -> str | None:
    """The with-past task to run for SOURCE -> ``output``, or None for the single-graph converters.

    ``--task text-generation-with-past`` asks for it (from a folder, or from a Python source giving a
    transformers causal LM); without ``--task`` a causal-LM folder gets it when ``output`` is a folder (a
    path not ending in ``.onnx``); ``-o FILE.onnx`` keeps the no-cache graph."""
    if task in _LATER:
        raise UsageError(
            f"--task {task} is not built yet", "export without cache: --task " + task.removesuffix("-with-past")
        )
    wants = task in WITH_PAST_TASKS
    if task is not None and not wants:
        return None
    from .lm_source import is_python_source

    if wants and is_python_source(source):
        if task != WITH_PAST_TASKS[0]:
            raise UsageError(
                f"--task {task} is exported from a Hugging Face folder only, not from {source}",
                "save the model with save_pretrained and convert that folder",
            )
        if str(output).endswith(".onnx"):
            raise UsageError(
                f"--task {task} writes a folder (model.onnx, config.json, generation_config.json), not {output}",
                "give -o a folder, e.g. -o out/",
            )
        return task
    folder = Path(source)
    if not (folder / "config.json").is_file():
        if wants:
            raise UsageError(
                f"--task {task} needs a Hugging Face model folder, not {source}",
                "give the folder save_pretrained wrote (config.json + model.safetensors)",
            )
        return None
    to_file = str(output).endswith(".onnx")
    if wants and to_file:
        raise UsageError(
            f"--task {task} writes a folder (model.onnx, config.json, tokenizer files), not {output}",
            "give -o a folder, e.g. -o out/",
        )
    if wants:
        return task
    if to_file:
        return None
    from ..converters.hf_folder import _json

    return task_of(_json(folder / "config.json", "model config"))
