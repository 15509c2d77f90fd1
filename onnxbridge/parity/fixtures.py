"""Golden fixtures: inputs and expected outputs in ``.npz`` files, read without unpickling.

One format for ``convert`` / ``validate`` ``--save-inputs`` / ``--save-outputs`` and the gate:
keys are ``inputs::CASE::NAME`` and ``outputs::CASE::NAME``, plus an optional ``meta`` key (UTF-8
JSON as a uint8 array: which model and source the fixtures were made with). A file may hold the
inputs, the outputs, or both (the gate keeps both in one file, so a failing model's fixtures replay
with ``onnxbridge validate MODEL.onnx --expected FIXTURES.npz``).

Older files still read: ``CASE::NAME`` keys (v0.1's ``--save-*`` files) and plain ``NAME`` keys
(an ``.npz`` made by hand) hold whichever side the caller asks for.
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
from ..publish import pending

__all__ = [
    "SEP",
    "INPUTS",
    "OUTPUTS",
    "Cases",
    "Fixtures",
    "write_fixtures",
    "read_fixtures",
    "save_cases",
    "load_cases",
    "FixtureRunner",
]

SEP = "::"
INPUTS, OUTPUTS = "inputs", "outputs"
_KINDS = (INPUTS, OUTPUTS)
_DEFAULT_HINT = "write fixtures with --save-inputs / --save-outputs (or onnxbridge check --update)"

Cases = Sequence[tuple[str, dict[str, np.ndarray]]]


@dataclass(frozen=True)
class Fixtures:
    """What one fixtures file holds: inputs and / or expected outputs per case, in case order."""

    path: Path
    inputs: tuple[tuple[str, dict[str, np.ndarray]], ...] = ()
    outputs: tuple[tuple[str, dict[str, np.ndarray]], ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    legacy: bool = False  # keys without inputs:: / outputs::, which hold whichever side is asked for

    def side(self, kind: str) -> tuple[tuple[str, dict[str, np.ndarray]], ...]:
        """The inputs or the outputs (a legacy file's cases serve as either)."""
        return self.inputs if kind == INPUTS else self.outputs


def write_fixtures(
    path: str | Path, *, inputs: Cases = (), outputs: Cases = (), meta: dict[str, Any] | None = None
) -> Path:
    """Write inputs and / or outputs (and ``meta``) atomically as one ``.npz``."""
    arrays: dict[str, np.ndarray] = {}
    for kind, cases in ((INPUTS, inputs), (OUTPUTS, outputs)):
        for label, named in cases:
            for name, arr in named.items():
                arrays[f"{kind}{SEP}{label}{SEP}{name}"] = np.asarray(arr)
    if meta is not None:
        arrays["meta"] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]  # mypy matches **dict to allow_pickle: bool
    return atomic_write_bytes(path, buf.getvalue())


def read_fixtures(path: str | Path, *, hint: str = _DEFAULT_HINT, where: str = "") -> Fixtures:
    """Read a fixtures file (``allow_pickle=False``); every problem is an ``InputError`` with ``hint``."""
    path = Path(path)
    at = f" ({where})" if where else ""
    if not path.is_file():
        raise InputError(f"fixtures file {path} does not exist{at}", hint)
    journal = pending(path)
    if journal is not None:
        raise InputError(
            f"fixtures file {path} is incomplete: a run that wrote it with its ONNX file was interrupted "
            f"({journal}){at}",
            "rerun the command that wrote it; it finishes the write",
        )
    if not zipfile.is_zipfile(path):
        raise InputError(f"fixtures file {path} is not an .npz file{at}", hint)
    found: dict[str, dict[str, dict[str, np.ndarray]]] = {INPUTS: {}, OUTPUTS: {}, "": {}}
    meta: dict[str, Any] = {}
    try:
        with np.load(path, allow_pickle=False) as data:
            for key in data.files:
                if key == "meta":
                    try:
                        meta = json.loads(bytes(data[key]).decode() or "{}")
                    except ValueError as e:  # not UTF-8, not JSON
                        raise _Malformed(f"its meta entry is not UTF-8 JSON ({e})") from e
                    continue
                kind, label, name = _split(key)
                found[kind].setdefault(label, {})[name] = data[key]
    except _Malformed as e:
        raise InputError(f"fixtures file {path}{at}: {e}", hint) from e
    except ValueError as e:  # numpy refusing an object array (allow_pickle=False)
        raise InputError(
            f"fixtures file {path}{at}: {e}", "fixtures hold plain numeric arrays only (no pickled objects)"
        ) from e
    except Exception as e:
        raise InputError(f"fixtures file {path} is unreadable{at}: {type(e).__name__}: {e}", hint) from e
    legacy = found[""]
    if legacy and (found[INPUTS] or found[OUTPUTS]):
        raise InputError(f"fixtures file {path} mixes inputs::/outputs:: keys with other keys{at}", hint)
    if not legacy and not found[INPUTS] and not found[OUTPUTS]:
        raise InputError(f"fixtures file {path} holds no arrays{at}", hint)
    if legacy:
        cases = tuple(legacy.items())
        return Fixtures(path, cases, cases, meta if isinstance(meta, dict) else {}, legacy=True)
    return Fixtures(
        path, tuple(found[INPUTS].items()), tuple(found[OUTPUTS].items()), meta if isinstance(meta, dict) else {}
    )


class _Malformed(ValueError):
    """A key or the meta entry that breaks the format (not numpy's refusal of a pickled array)."""


def _split(key: str) -> tuple[str, str, str]:
    """(kind, case label, array name) of a key; kind '' for the older key forms."""
    kind, sep, rest = key.partition(SEP)
    if sep and kind in _KINDS:
        label, sep2, name = rest.partition(SEP)
        if sep2 and label and name:
            return kind, label, name
        raise _Malformed(f"unexpected key {key!r} (expected {kind}{SEP}CASE{SEP}NAME)")
    label, sep, name = key.partition(SEP)
    return ("", label, name) if sep else ("", "fixture", key)


def save_cases(path: str | Path, cases: Cases, kind: str = INPUTS) -> Path:
    """Write one side (``inputs`` or ``outputs``) of some cases."""
    if kind == INPUTS:
        return write_fixtures(path, inputs=cases)
    if kind == OUTPUTS:
        return write_fixtures(path, outputs=cases)
    raise ValueError(f"fixture side {kind!r}: expected {INPUTS!r} or {OUTPUTS!r}")


def load_cases(path: str | Path, kind: str = INPUTS) -> list[tuple[str, dict[str, np.ndarray]]]:
    """The cases of one side of a fixtures file; a file without that side is an ``InputError``."""
    fixtures = read_fixtures(path)
    cases = fixtures.side(kind)
    if not cases:
        raise InputError(
            f"fixtures file {fixtures.path} holds no {kind}",
            "write them with --save-inputs (inputs) or --save-outputs (outputs)",
        )
    return list(cases)


class FixtureRunner:
    """Replays stored outputs: a reference runner that needs no source framework.

    Cases are matched by label, and the inputs must be the stored ones (compared by value).
    """

    def __init__(
        self,
        expected: Fixtures,
        inputs: Cases,
        output_names: Sequence[str],
        *,
        hint: str = "the ONNX model's output names must match the fixture; regenerate it",
    ) -> None:
        self.name = "golden fixtures"
        self._output_names = tuple(output_names)
        outputs = dict(expected.side(OUTPUTS))
        if not outputs:
            raise UsageError(f"{expected.path} holds no expected outputs", "pass the --save-outputs file")
        labels = [label for label, _ in inputs]
        if set(labels) != set(outputs) and len(labels) == len(outputs):
            # hand-made or older files: pair by order when the labels differ but the counts agree
            outputs = dict(zip(labels, outputs.values()))
        missing_cases = [label for label in labels if label not in outputs]
        if missing_cases or len(labels) != len(outputs):
            raise UsageError(
                f"{expected.path} holds {len(outputs)} case(s) but the inputs hold {len(labels)}"
                + (f" (no expected outputs for {', '.join(missing_cases[:5])})" if missing_cases else ""),
                "pass the --inputs and --expected files written by the same run",
            )
        first = next(iter(outputs.values()))
        missing = [n for n in self._output_names if n not in first]
        if missing:
            raise UsageError(
                f"{expected.path} has no expected values for output(s) {', '.join(missing)} (it has: {', '.join(first)})",
                hint,
            )
        self._cases = [(feeds, outputs[label]) for label, feeds in inputs]

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._output_names

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        for stored, outs in self._cases:
            if stored is feeds or (
                stored.keys() == feeds.keys() and all(np.array_equal(stored[k], feeds[k]) for k in feeds)
            ):
                return [outs[n] for n in self._output_names]
        raise UsageError("no stored outputs for these inputs", "replay the inputs of the same fixtures file")
