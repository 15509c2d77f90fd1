"""Keras in float64, for the precision oracle: the model rebuilt from its config under a float64 dtype
policy in the same backend, its weights cast."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .tf_runner import TfRunner, keras_call

__all__ = ["KerasRunner", "float64_config"]


def float64_config(config: Any) -> Any:
    """A Keras config with every float32 dtype and dtype policy turned float64 (other dtypes kept)."""
    if isinstance(config, dict):
        if config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and isinstance(config.get("config"), dict):
            name = config["config"].get("name")
            return {**config, "config": {**config["config"], "name": "float64" if name == "float32" else name}}
        return {k: ("float64" if k == "dtype" and v == "float32" else float64_config(v)) for k, v in config.items()}
    if isinstance(config, list):
        return [float64_config(c) for c in config]
    return config


class KerasRunner(TfRunner):
    """Keras eager (TensorFlow backend), inference mode; implements
    :class:`~onnxbridge.parity.oracle.Float64Reference` by rebuilding the model in float64."""

    float64_how = "keras: rebuilt from its config under a float64 dtype policy, weights cast"

    def __init__(self, model: Any, output_names: Sequence[str], positional: Sequence[str], name: str) -> None:
        super().__init__(keras_call(model, len(positional)), output_names, positional=positional, name=name)
        self.model = model

    def float64_runner(self) -> TfRunner:
        """The model rebuilt from ``get_config()`` in float64 (raises for a model without a config)."""
        import numpy as np

        twin = type(self.model).from_config(float64_config(self.model.get_config()))
        twin.set_weights(
            [
                np.asarray(w, dtype=np.float64) if np.issubdtype(np.asarray(w).dtype, np.floating) else w
                for w in self.model.get_weights()
            ]
        )
        return TfRunner(
            keras_call(twin, len(self.positional)),
            self.output_names,
            positional=self.positional,
            name=f"{self.name} (float64)",
        )
