"""The with-past graph's interface in optimum's names: ``input_ids``, ``attention_mask``, ``position_ids``
(where the model takes them), ``past_key_values.{i}.key/.value`` in; ``logits``, ``present.{i}.key/.value``
out. One :class:`CacheLayout` describes it, read from a model in memory or from a written graph.

Two conventions for rows of different lengths: optimum's graphs take left-padded rows (the mask marks the
padding, positions count real tokens); ONNX Runtime GenAI's graphs (``GroupQueryAttention``) read each
row's length from the mask's sum and keep its tokens at the start of its cache: rows are right-padded and
each row's next token is read at its last real position."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["DIM_NAMES", "CacheLayout", "KvShape", "Padding", "past_name", "present_name"]

Padding = Literal["left", "right"]
# the attention ops that take per-row lengths (the mask's sum) instead of a mask over positions
PACKED_ATTENTION = frozenset({"GroupQueryAttention"})

# optimum's names for the dynamic axes
BATCH, SEQ, PAST, TOTAL = (
    "batch_size",
    "sequence_length",
    "past_sequence_length",
    "past_sequence_length + sequence_length",
)
DIM_NAMES = (BATCH, SEQ, PAST, TOTAL)


def past_name(layer: int, kind: str) -> str:
    return f"past_key_values.{layer}.{kind}"


def present_name(layer: int, kind: str) -> str:
    return f"present.{layer}.{kind}"


@dataclass(frozen=True)
class KvShape:
    """One cached tensor's fixed dims: ``[batch, heads, length, head_dim]``."""

    heads: int
    head_dim: int


@dataclass(frozen=True)
class CacheLayout:
    """Which inputs the graph takes, the shape of each layer's key and value, and how rows of different
    lengths are padded (``left``: optimum's; ``right``: each row's tokens at the start of its cache)."""

    keys: tuple[KvShape, ...]
    values: tuple[KvShape, ...]
    position_ids: bool
    dtype: str = "float32"
    padding: Padding = "left"

    @property
    def layers(self) -> int:
        return len(self.keys)

    @property
    def past_names(self) -> tuple[str, ...]:
        return tuple(past_name(i, k) for i in range(self.layers) for k in ("key", "value"))

    @property
    def present_names(self) -> tuple[str, ...]:
        return tuple(present_name(i, k) for i in range(self.layers) for k in ("key", "value"))

    @property
    def input_names(self) -> tuple[str, ...]:
        head = ("input_ids", "attention_mask") + (("position_ids",) if self.position_ids else ())
        return head + self.past_names

    @property
    def output_names(self) -> tuple[str, ...]:
        return ("logits",) + self.present_names

    def kv_shapes(self) -> tuple[KvShape, ...]:
        """Key, value, key, value... in input order."""
        return tuple(s for pair in zip(self.keys, self.values) for s in pair)

    def empty_past(self, batch: int) -> dict[str, Any]:
        """The prefill's past: every tensor ``[batch, heads, 0, head_dim]``."""
        import numpy as np

        return {
            n: np.zeros((batch, s.heads, 0, s.head_dim), dtype=self.dtype)
            for n, s in zip(self.past_names, self.kv_shapes())
        }

    @classmethod
    def from_graph(cls, session: Any, path: Path) -> CacheLayout:
        """The layout of the graph at ``path`` (``session`` runs it): its inputs, its attention ops (a
        packed attention: right padding) and, where the graph leaves the head size symbolic, the
        ``head_size`` of a ``genai_config.json`` beside it."""
        import json

        import onnx

        ops = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
        head_size = None
        config = path.parent / "genai_config.json"
        if config.is_file():
            head_size = json.loads(config.read_text()).get("model", {}).get("decoder", {}).get("head_size")
        padding: Padding = "right" if ops & PACKED_ATTENTION else "left"
        return cls.from_session(session, head_size=head_size, padding=padding)

    @classmethod
    def from_session(cls, session: Any, *, head_size: int | None = None, padding: Padding = "left") -> CacheLayout:
        """The layout of a written graph, from its ONNX Runtime session's inputs (``head_size`` where the
        graph leaves that dim symbolic)."""
        from ..errors import InputError

        inputs = {i.name: i for i in session.get_inputs()}
        missing = [n for n in ("input_ids", "attention_mask", "past_key_values.0.key") if n not in inputs]
        if missing:
            raise InputError(
                f"the graph has no input {missing[0]!r}: not a with-past decoder",
                "convert the folder with --task text-generation-with-past",
            )
        keys: list[KvShape] = []
        values: list[KvShape] = []
        i = 0
        while past_name(i, "key") in inputs:
            for kind, into in (("key", keys), ("value", values)):
                shape = list(inputs[past_name(i, kind)].shape)
                if len(shape) == 4 and not isinstance(shape[3], int) and head_size is not None:
                    shape[3] = head_size
                if len(shape) != 4 or not isinstance(shape[1], int) or not isinstance(shape[3], int):
                    raise InputError(
                        f"{past_name(i, kind)} has shape {shape}",
                        "a cache input is [batch, heads, past_sequence_length, head_dim]",
                    )
                into.append(KvShape(shape[1], shape[3]))
            i += 1
        elem = inputs["past_key_values.0.key"].type
        dtype = "float16" if "float16" in elem else "float32"
        return cls(tuple(keys), tuple(values), "position_ids" in inputs, dtype, padding)
