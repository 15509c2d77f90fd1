"""Golden fixtures: inputs and reference outputs in ``.npz`` files, read without unpickling.

A fixture file holds one or more cases. Keys are ``NAME`` for a single case or
``CASE::NAME`` for several; an ``.npz`` a user made by hand with plain input names works too.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError, UsageError
from ..fsutil import atomic_write_bytes

__all__ = ["save_cases", "load_cases", "FixtureRunner", "SEP"]

SEP = "::"


def save_cases(path: str | Path, cases: Sequence[tuple[str, dict[str, np.ndarray]]]) -> Path:
    """Write cases atomically as one ``.npz``."""
    arrays: dict[str, np.ndarray] = {}
    for label, named in cases:
        for name, arr in named.items():
            arrays[f"{label}{SEP}{name}"] = np.asarray(arr)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load_cases(path: str | Path) -> list[tuple[str, dict[str, np.ndarray]]]:
    """Read cases from an ``.npz`` (``allow_pickle=False``: object arrays are refused)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"fixture file {path} does not exist", "write one with --save-inputs / --save-outputs")
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path} is not an .npz file", "write it with numpy.savez or --save-inputs")
    cases: dict[str, dict[str, np.ndarray]] = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                label, sep, name = key.partition(SEP)
                if not sep:
                    label, name = "fixture", key
                cases.setdefault(label, {})[name] = data[key]
    except ValueError as e:
        raise InputError(f"{path}: {e}", "fixtures hold plain numeric arrays only (no pickled objects)") from e
    except Exception as e:
        raise InputError(f"{path} is not a readable .npz file: {type(e).__name__}: {e}", "re-create it") from e
    if not cases:
        raise InputError(f"{path} holds no arrays", "write it with --save-inputs")
    return list(cases.items())


class FixtureRunner:
    """Replays stored reference outputs: a reference runner that needs no source framework."""

    name = "golden fixtures"

    def __init__(self, path: str | Path, inputs: Sequence[tuple[str, dict[str, np.ndarray]]],
                 output_names: Sequence[str]) -> None:
        self.path = Path(path)
        expected = load_cases(path)
        if len(expected) != len(inputs):
            raise UsageError(
                f"{path} holds {len(expected)} case(s) but the inputs hold {len(inputs)}",
                "pass the --inputs and --expected files written by the same run",
            )
        self._by_inputs = [(feeds, outs) for (_, feeds), (_, outs) in zip(inputs, expected)]
        self._output_names = tuple(output_names)
        missing = [n for n in self._output_names if n not in expected[0][1]]
        if missing:
            raise UsageError(
                f"{path} has no expected values for output(s) {', '.join(missing)} "
                f"(it has: {', '.join(expected[0][1])})",
                "the ONNX model's output names must match the fixture; regenerate it with --save-outputs",
            )

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._output_names

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        for stored_feeds, outs in self._by_inputs:
            if stored_feeds is feeds or (
                stored_feeds.keys() == feeds.keys()
                and all(np.array_equal(stored_feeds[k], feeds[k]) for k in feeds)
            ):
                return [outs[n] for n in self._output_names]
        raise UsageError("no stored outputs for these inputs", "replay with the --inputs file of the same run")
