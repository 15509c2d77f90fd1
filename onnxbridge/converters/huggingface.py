"""The Hugging Face folder converter: a folder ``save_pretrained`` wrote (``config.json`` + weights)
becomes a transformers model, then goes through the PyTorch converter's routes and reference runner.

The task comes from the config's ``architectures`` (``--task`` overrides it), the inputs from the
config and the processor's preprocessing config (:mod:`.hf_folder`), the output names from the
model's output class. Models that return caches are loaded with ``use_cache=False``. Nothing is
downloaded: loaders run offline with ``local_files_only=True``, and weights are read from
safetensors only unless ``--trust-model``.
"""

from __future__ import annotations

import pickle
from dataclasses import replace
from typing import Any

from .._util import first_line, quiet
from ..errors import InputError, UsageError
from ..sources import SourceRef
from ..specs import TensorSpec
from .base import SourceModel
from .hf_folder import TASKS, input_specs, merge_inputs, model_class, offline, read_folder
from .pytorch import TorchConverter
from .torch_runner import TorchCall
from .torch_utils import forward_params

__all__ = ["HfConverter"]


class HfConverter:
    """Hugging Face model folders to ONNX, through the PyTorch routes."""

    framework = "huggingface"
    route_names = ("torchscript", "torch.export/dynamo")  # TorchScript first: see routes()
    dir_markers = ("config.json",)
    packages = ("torch", "transformers", "safetensors", "onnxscript", "onnxsim")
    tasks = tuple(TASKS)  # --task (see converters.base.TakesTask)

    def __init__(self) -> None:
        self._torch = TorchConverter()

    def load(
        self,
        ref: SourceRef,
        specs: tuple[TensorSpec, ...] = (),
        *,
        trust: bool = False,
        obj: Any = None,
        task: str | None = None,
    ) -> SourceModel[TorchCall]:
        """The folder's model in eval mode, with inputs built from its configs (or ``--input``)."""
        if ref.kind != "dir" or ref.path is None:
            raise UsageError(
                f"the huggingface converter reads a model folder, not {ref.text}",
                "give the folder save_pretrained wrote (config.json + model.safetensors)",
            )
        folder = read_folder(ref.path, trust=trust)
        model, note = self._model(folder, task, trust)
        params = [p.name for p in forward_params(model) if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        inputs = merge_inputs(input_specs(folder, model), specs, params, ref.text)
        loaded = self._torch.load_module(model, inputs.example(), inputs.specs, ref.text)
        weights = ", ".join(p.name for p in folder.weights)
        return replace(loaded, framework=self.framework, notes=(note, f"weights: {weights}", *loaded.notes))

    @staticmethod
    def _model(folder, task: str | None, trust: bool) -> tuple[Any, str]:
        with offline():
            import transformers
            from safetensors import SafetensorError

            cls, note = model_class(folder, task)
            try:
                with quiet():
                    custom = {"trust_remote_code": True} if folder.custom else {}  # --trust-model: the user's consent
                    config = transformers.AutoConfig.from_pretrained(folder.path, local_files_only=True, **custom)
                    if hasattr(config, "use_cache"):
                        config.use_cache = False  # caches are outputs ONNX graphs should not carry
                    model, info = cls.from_pretrained(
                        folder.path,
                        config=config,
                        local_files_only=True,
                        use_safetensors=folder.safetensors,
                        output_loading_info=True,
                        **custom,
                    )
            except (
                OSError,
                ValueError,
                KeyError,
                TypeError,
                RuntimeError,
                EOFError,
                pickle.UnpicklingError,
                SafetensorError,
            ) as e:
                raise InputError(
                    f"{folder.path}: transformers could not load the model ({first_line(e, 300)})",
                    "check that config.json and the weights belong together; --task picks the head",
                ) from e
            except Exception as e:  # config.json's values, or the folder's own code, may raise anything
                if folder.custom:
                    files = ", ".join(sorted({c.file for c in folder.custom}))
                    raise InputError(
                        f"{folder.path}: the folder's own code ({files}) failed to load the model "
                        f"({first_line(e, 300)})",
                        "fix that code, or convert a folder that uses a stock transformers class",
                    ) from e
                raise InputError(
                    f"{folder.path}: transformers could not build the model from config.json ({first_line(e, 300)})",
                    "fix the value it names, or re-save the model with save_pretrained",
                ) from e
        model.eval()
        missing = sorted(info.get("missing_keys") or ())
        if missing and task is None:  # random weights would be checked against themselves: parity proves nothing
            files = ", ".join(p.name for p in folder.weights)
            raise InputError(
                f"{folder.path}: {files} lack {len(missing)} tensor(s) the model needs "
                f"({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''})",
                "the weights are incomplete or belong to another architecture: copy them again, or "
                "pass --task to convert a head that is new (randomly initialised) on purpose",
            )
        if missing:
            note += f"; newly initialised (not in the weights): {', '.join(missing[:4])}{', ...' * (len(missing) > 4)}"
        return model, note

    def routes(self, loaded: SourceModel[TorchCall]) -> list:
        """TorchScript first, as optimum exports transformers models: on these models it exports in a
        fraction of torch.export/dynamo's time (no decomposition pass), and its product is held to the
        same structural and parity checks. torch.export/dynamo runs when TorchScript fails, is refused
        (a branch on tensor values) or misses parity; ``--route`` picks the order."""
        torch_routes = self._torch.routes(loaded)
        by_name = {r.name: r for r in torch_routes}
        return [by_name[n] for n in self.route_names if n in by_name]

    def reference_runner(self, loaded: SourceModel[TorchCall]):
        return self._torch.reference_runner(loaded)

    @staticmethod
    def failing_op(e: BaseException) -> str | None:
        return TorchConverter.failing_op(e)
