"""Golden fixtures of a declared model: its inputs and its source's outputs, in one ``.npz``.

Keys are ``inputs::CASE::NAME`` and ``outputs::CASE::NAME``, plus ``meta`` (UTF-8 JSON as a uint8
array: which ONNX file and source the fixtures were made with). Read with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, UsageError
from ..fsutil import atomic_write_bytes
from .results import UPDATE_HINT

__all__ = ["Golden", "read_golden", "write_golden", "GoldenRunner", "UPDATE_HINT"]

SEP = "::"

Cases = Sequence[tuple[str, dict[str, np.ndarray]]]


@dataclass(frozen=True)
class Golden:
    """Inputs and expected outputs per case, in case order."""

    path: Path
    inputs: tuple[tuple[str, dict[str, np.ndarray]], ...]
    outputs: tuple[tuple[str, dict[str, np.ndarray]], ...]
    meta: dict[str, Any] = field(default_factory=dict)


def write_golden(path: str | Path, inputs: Cases, outputs: Cases, meta: dict[str, Any] | None = None) -> Path:
    """Write the fixtures atomically."""
    arrays: dict[str, np.ndarray] = {}
    for kind, cases in (("inputs", inputs), ("outputs", outputs)):
        for label, named in cases:
            for name, arr in named.items():
                arrays[f"{kind}{SEP}{label}{SEP}{name}"] = np.asarray(arr)
    arrays["meta"] = np.frombuffer(json.dumps(meta or {}, sort_keys=True).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def read_golden(path: str | Path, *, where: str = "") -> Golden:
    """Read the fixtures; a missing or malformed file is an ``InputError`` that says to run --update."""
    path = Path(path)
    at = f" ({where})" if where else ""
    if not path.is_file():
        raise InputError(f"fixtures file {path} does not exist{at}", UPDATE_HINT)
    if not zipfile.is_zipfile(path):
        raise InputError(f"fixtures file {path} is not an .npz file{at}", UPDATE_HINT)
    found: dict[str, dict[str, dict[str, np.ndarray]]] = {"inputs": {}, "outputs": {}}
    meta: dict[str, Any] = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                if key == "meta":
                    meta = json.loads(bytes(data[key]).decode() or "{}")
                    continue
                kind, _, rest = key.partition(SEP)
                label, _, name = rest.rpartition(SEP)
                if kind not in found or not label or not name:
                    raise ValueError(f"unexpected key {key!r}")
                found[kind].setdefault(label, {})[name] = data[key]
    except Exception as e:
        raise InputError(f"fixtures file {path} is unreadable{at}: {type(e).__name__}: {e}", UPDATE_HINT) from e
    labels = list(found["inputs"])
    if not labels or labels != list(found["outputs"]):
        raise InputError(f"fixtures file {path} does not hold matching inputs and outputs{at}", UPDATE_HINT)
    return Golden(
        path,
        tuple((label, found["inputs"][label]) for label in labels),
        tuple((label, found["outputs"][label]) for label in labels),
        meta if isinstance(meta, dict) else {},
    )


class GoldenRunner:
    """The reference runner of a replay: returns the stored outputs of the stored inputs."""

    def __init__(self, golden: Golden, output_names: Sequence[str]) -> None:
        self.name = f"golden fixtures ({golden.path.name})"
        self._golden = golden
        self._output_names = tuple(output_names)
        stored = list(golden.outputs[0][1])
        missing = [n for n in self._output_names if n not in stored]
        if missing:
            raise UsageError(
                f"fixtures file {golden.path} has no expected values for output(s) {', '.join(missing)} "
                f"(it has: {', '.join(stored)})",
                "the ONNX file's outputs were renamed; " + UPDATE_HINT,
            )

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._output_names

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        for (_, stored), (_, outs) in zip(self._golden.inputs, self._golden.outputs):
            if stored is feeds or (
                stored.keys() == feeds.keys() and all(np.array_equal(stored[k], feeds[k]) for k in feeds)
            ):
                return [outs[n] for n in self._output_names]
        raise UsageError("no stored outputs for these inputs", "replay the inputs of the same fixtures file")
