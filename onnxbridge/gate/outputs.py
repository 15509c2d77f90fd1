"""``check --update``'s write: the ONNX file, its external data and the fixtures, published together.

The export ran into a scratch folder inside the project (so publishing is a rename); the fixtures
are written there too, then every file reaches its place in one crash-safe publication
(:func:`onnxbridge.publish.publish`): a ``kill -9`` leaves the old set or the new one, never a mix.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from ..onnxio import data_name
from ..publish import publish
from .manifest import ModelEntry

__all__ = ["publish_update", "onnx_files"]


def onnx_files(entry: ModelEntry) -> tuple[str, str]:
    """The project-relative paths of a model's ONNX file and of the external data beside it (which
    may not exist)."""
    return entry.onnx, str(Path(entry.onnx).with_name(data_name(entry.onnx)).as_posix())


def publish_update(entry: ModelEntry, root: Path, folder: Path, report: Any, route: str | None) -> None:
    """Publish ``folder``'s exported model (named as ``entry.onnx``) and fixtures made from
    ``folder/inputs.npz`` and ``folder/outputs.npz`` over the entry's committed files."""
    from .._version import __version__
    from ..parity.fixtures import INPUTS, OUTPUTS, load_cases, write_fixtures

    exported = folder / Path(entry.onnx).name
    onnx_out, fixtures_out = root / entry.onnx, root / entry.fixtures
    data_out = onnx_out.with_name(data_name(onnx_out))
    staged_fixtures = write_fixtures(
        folder / "fixtures.staged.npz", inputs=load_cases(folder / "inputs.npz", INPUTS),
        outputs=load_cases(folder / "outputs.npz", OUTPUTS),
        meta={"onnx_sha256": _sha256(exported), "source": entry.source, "route": route,
              "framework": report.framework, "onnxbridge": __version__,
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
    )
    onnx_out.parent.mkdir(parents=True, exist_ok=True)
    fixtures_out.parent.mkdir(parents=True, exist_ok=True)
    files = {onnx_out: exported, fixtures_out: staged_fixtures}
    if (folder / data_out.name).exists():
        files[data_out] = folder / data_out.name
    publish(files, remove=[data_out] if data_out not in files and data_out.exists() else [])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
