"""The inputs of a Hugging Face folder's model, for every modality: token ids with a dynamic batch and
sequence; raw audio with a dynamic number of samples; images with dynamic height and width where the
model is convolutional and runs at other sizes (it is tried once); images beside text for multimodal models (CLIP, SigLIP:
an image batch of its own). ``--input`` adds, frees or fixes any input by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .._util import quiet
from ..errors import InputError, UsageError
from ..specs import TensorSpec

if TYPE_CHECKING:
    import numpy as np

    from .hf_folder import HfFolder

__all__ = ["FolderInputs", "input_specs", "merge_inputs", "min_samples"]


@dataclass(frozen=True)
class FolderInputs:
    """The inputs, and the size a dynamic axis is exported at where the default size would not run
    (``export_sizes``: axis -> size; 1600 audio samples, a 224-pixel height)."""

    specs: tuple[TensorSpec, ...]
    export_sizes: tuple[tuple[str, int], ...] = ()

    def example(self) -> dict[str, np.ndarray] | None:
        """Inputs at the export sizes, or None when the default sizes do (the converter draws them)."""
        from ..parity.inputs import default_axis_size, generate_inputs

        hints = dict(self.export_sizes)
        axes = {d for s in self.specs for d in s.dims if isinstance(d, str)}
        if not axes & hints.keys():
            return None
        return generate_inputs(self.specs, {a: hints.get(a, default_axis_size(a)) for a in axes}, seed=0)


def _sub(cfg: Any, name: str, default: Any) -> Any:
    """``name`` from the config, else from its vision config (multimodal models keep it there)."""
    for c in (cfg, getattr(cfg, "vision_config", None)):
        value = getattr(c, name, None) if c is not None else None
        if value is not None:
            return value
    return default


def _positive(folder: HfFolder, key: str, value: Any, file: str = "preprocessor_config.json") -> int:
    """A size from the folder's configs: a positive integer, or exit 2 naming the file and key."""
    if type(value) is int and value > 0:
        return value
    raise InputError(
        f"{folder.path / file}: {key} is {repr(value)[:40]}, not a positive size",
        "fix the value, or re-save the model and its processor with save_pretrained",
    )


def _image_size(folder: HfFolder, cfg: Any) -> tuple[int, int]:
    """(height, width) from the processor's crop or resize size, else the (vision) config's image_size."""
    for key in ("crop_size", "size"):
        size = folder.preprocessor.get(key)
        if isinstance(size, int):
            side = _positive(folder, key, size)
            return side, side
        if isinstance(size, dict) and "height" in size and "width" in size:
            return _positive(folder, f"{key}.height", size["height"]), _positive(folder, f"{key}.width", size["width"])
        if isinstance(size, dict) and "shortest_edge" in size:
            side = _positive(folder, f"{key}.shortest_edge", size["shortest_edge"])
            return side, side
    size = _sub(cfg, "image_size", 224)
    h, w = (size[0], size[-1]) if isinstance(size, (list, tuple)) and size else (size, size)
    return _positive(folder, "image_size", h, "config.json"), _positive(folder, "image_size", w, "config.json")


def min_samples(cfg: Any) -> int | None:
    """The fewest raw-audio samples a convolutional feature encoder (wav2vec2, HuBERT, WavLM...) turns
    into one frame; None when the config has no such encoder."""
    kernels, strides = getattr(cfg, "conv_kernel", None), getattr(cfg, "conv_stride", None)
    if not isinstance(kernels, (list, tuple)) or not isinstance(strides, (list, tuple)) or not kernels:
        return None
    n = 1
    for k, s in reversed(list(zip(kernels, strides))):
        n = (n - 1) * int(s) + int(k)
    return n


def _runs_at(model: Any, spec: TensorSpec, sizes: dict[str, int]) -> bool:
    """Whether the model runs on one generated input at ``sizes`` (a model that fixes its image size,
    as ViT does, raises)."""
    import torch

    shape = spec.shape(sizes)
    try:
        with torch.inference_mode(), quiet():
            model(**{spec.name: torch.randn(*shape)})
    except Exception:  # noqa: BLE001 - any refusal means: keep the size fixed
        return False
    return True


def _convolutional(model: Any, params: set[str]) -> bool:
    """Whether a vision model's size dependence is convolutional only. Position embeddings interpolated
    to the image size (ViT, DINOv2) and shifted windows padded to it (Swin) run eagerly at any size but
    export badly with a dynamic one (torch.export ties height to width, or does not finish): those keep
    the processor's size, which ``--input`` can free."""
    if "interpolate_pos_encoding" in params or getattr(model.config, "window_size", None) is not None:
        return False
    import torch

    names = [n for n, _ in model.named_parameters()] if isinstance(model, torch.nn.Module) else []
    return not any("position_embedding" in n or "pos_embed" in n for n in names)


def _image(folder: HfFolder, model: Any, name: str, batch: str, probe: bool) -> tuple[TensorSpec, dict[str, int]]:
    """The image input: height and width dynamic where ``probe`` shows the model runs at other sizes."""
    h, w = _image_size(folder, model.config)
    channels = int(_sub(model.config, "num_channels", 3))
    fixed = TensorSpec(name, (batch, channels, h, w), "float32")
    free = TensorSpec(name, (batch, channels, "height", "width"), "float32")
    if probe and _runs_at(model, free, {batch: 1, "height": h + 3, "width": w + 5}):
        return free, {"height": h, "width": w}
    return fixed, {}


def _audio(folder: HfFolder, cfg: Any, name: str) -> tuple[TensorSpec, dict[str, int]]:
    """Raw audio: (batch, samples), exported at a tenth of a second (or the fewest samples the encoder
    needs, doubled); a spectrogram input (AST) keeps the config's fixed frames and mel bins."""
    frames, mels = getattr(cfg, "max_length", None), getattr(cfg, "num_mel_bins", None)
    fewest = min_samples(cfg)
    if fewest is None and isinstance(frames, int) and isinstance(mels, int):
        return TensorSpec(name, ("batch", frames, mels), "float32"), {}
    rate = folder.preprocessor.get("sampling_rate")
    rate = _positive(folder, "sampling_rate", rate) if rate is not None else int(getattr(cfg, "sampling_rate", 16000))
    return TensorSpec(name, ("batch", "samples"), "float32"), {"samples": max(rate // 10, 2 * (fewest or 1))}


def input_specs(folder: HfFolder, model: Any) -> FolderInputs:
    """The model's inputs, from its main input name, its forward, its config and the preprocessing
    config: dynamic ``batch``, sequence and audio axes; image sizes dynamic where the model allows."""
    from .torch_utils import forward_params

    cfg, pre = model.config, folder.preprocessor
    params = {p.name for p in forward_params(model)}
    main = getattr(model, "main_input_name", "input_ids")
    specs: list[TensorSpec] = []
    export: dict[str, int] = {}
    if main == "pixel_values":
        spec, sizes = _image(folder, model, main, "batch", probe=_convolutional(model, params))
        specs.append(spec)
        export.update(sizes)
    elif main == "input_features":
        mels = pre.get("feature_size")
        mels = _positive(folder, "feature_size", mels) if mels is not None else int(getattr(cfg, "num_mel_bins", 80))
        frames = pre.get("nb_max_frames")
        frames = (
            _positive(folder, "nb_max_frames", frames)
            if frames is not None
            else 2 * int(getattr(cfg, "max_source_positions", 1500))
        )
        specs.append(TensorSpec(main, ("batch", mels, frames), "float32"))
    elif main == "input_values":
        spec, sizes = _audio(folder, cfg, main)
        specs.append(spec)
        export.update(sizes)
    else:
        specs.append(TensorSpec(main, ("batch", "sequence"), "int64"))
        if "attention_mask" in params:
            specs.append(TensorSpec("attention_mask", ("batch", "sequence"), "int64"))
        if "token_type_ids" in params and int(getattr(cfg, "type_vocab_size", 0) or 0) > 1:
            specs.append(TensorSpec("token_type_ids", ("batch", "sequence"), "int64"))
        if "pixel_values" in params and getattr(cfg, "vision_config", None) is not None:
            # a dual encoder (CLIP, SigLIP: it can return a contrastive loss) pairs any number of images
            # with any number of texts; an image-to-text model takes one image per text
            batch = "image_batch" if "return_loss" in params else "batch"
            specs.append(_image(folder, model, "pixel_values", batch, probe=False)[0])
    if getattr(cfg, "is_encoder_decoder", False) and "decoder_input_ids" in params:
        specs.append(TensorSpec("decoder_input_ids", ("batch", "decoder_sequence"), "int64"))
    return FolderInputs(tuple(specs), tuple(sorted(export.items())))


def merge_inputs(found: FolderInputs, given: Sequence[TensorSpec], params: Sequence[str], where: str) -> FolderInputs:
    """``--input`` by name over the inputs found: a given input replaces the one of its name (its axes
    freed or fixed, same rank) or, when the forward takes it and none was found, is added."""
    if not given:
        return found
    unknown = [g.name for g in given if g.name not in params]
    if unknown:
        raise UsageError(
            f"--input {unknown[0]}: the model of {where} takes no input of that name",
            f"its forward takes: {', '.join(params)}",
        )
    by_name = {g.name: g for g in given}
    hints = dict(found.export_sizes)
    specs: list[TensorSpec] = []
    for f in found.specs:
        g = by_name.pop(f.name, None)
        if g is None:
            specs.append(f)
            continue
        if len(g.dims) != len(f.dims):
            raise UsageError(f"--input {g} has rank {len(g.dims)} but input '{f.name}' is {f}", "one dim per axis")
        for gd, fd in zip(g.dims, f.dims):  # a renamed or freed axis is exported at the size it had
            if isinstance(gd, str) and (isinstance(fd, int) or fd in hints):
                hints.setdefault(gd, fd if isinstance(fd, int) else hints[fd])
        specs.append(g)
    order = {p: i for i, p in enumerate(params)}
    specs.extend(sorted(by_name.values(), key=lambda s: order[s.name]))
    return replace(found, specs=tuple(specs), export_sizes=tuple(sorted(hints.items())))
