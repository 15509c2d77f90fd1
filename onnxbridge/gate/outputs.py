"""``check --update``'s files: staged by the worker, published by the submitting process, together.

The worker (this process, a process of the pool, or a Ray task, perhaps on another machine) exports
into a scratch folder inside the project (its copy of it), writes the fixtures there and hands back
:class:`StagedFiles`: the folder, or, from another machine, the files' bytes. Only the submitting
process publishes them, one model at a time, so two workers never write at once: the ONNX file, its
external data and the fixtures in one crash-safe publication (:func:`onnxbridge.publish.publish`): a
``kill -9`` leaves the old set or the new one, never a mix, and Ctrl-C waits for the renames.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..onnxio import data_name
from ..publish import publish, scratch_dir
from .cache import file_sha256
from .manifest import ModelEntry

__all__ = ["StagedFiles", "stage_update", "publish_update", "onnx_files"]

_FIXTURES = "fixtures.staged.npz"


@dataclass(frozen=True)
class StagedFiles:
    """One model's new files, not yet published: names in a scratch folder, or their bytes in transit."""

    folder: str | None  # a scratch folder under the project's .onnxbridge/ (None while in transit)
    onnx: str
    fixtures: str
    data: str | None = None  # the ONNX file's external data, when it has some
    blobs: tuple[tuple[str, bytes], ...] = ()  # name -> bytes, when the files travel between machines

    def packed(self) -> StagedFiles:
        """The files as bytes, to cross to another machine; the folder is removed."""
        assert self.folder is not None
        folder = Path(self.folder)
        names = [n for n in (self.onnx, self.fixtures, self.data) if n]
        blobs = tuple((n, (folder / n).read_bytes()) for n in names)
        shutil.rmtree(folder, ignore_errors=True)
        return dataclasses.replace(self, folder=None, blobs=blobs)

    def unpacked(self, state: Path) -> StagedFiles:
        """The bytes written into a new scratch folder under ``state`` (the project's .onnxbridge/)."""
        folder = scratch_dir(state)
        try:
            for name, data in self.blobs:
                (folder / Path(name).name).write_bytes(data)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return dataclasses.replace(self, folder=str(folder), blobs=())

    def discard(self) -> None:
        """Remove the scratch folder (what was not published goes with it)."""
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)


def onnx_files(entry: ModelEntry) -> tuple[str, str]:
    """The project-relative paths of a model's ONNX file and of the external data beside it (which
    may not exist)."""
    return entry.onnx, str(Path(entry.onnx).with_name(data_name(entry.onnx)).as_posix())


def stage_update(entry: ModelEntry, folder: Path, report: Any, route: str | None) -> StagedFiles:
    """The worker's part: fixtures made from ``folder/inputs.npz`` and ``folder/outputs.npz`` beside the
    exported model (named as ``entry.onnx``) in ``folder``."""
    from .._version import __version__
    from ..parity.fixtures import INPUTS, OUTPUTS, load_cases, write_fixtures

    exported = folder / Path(entry.onnx).name
    write_fixtures(
        folder / _FIXTURES,
        inputs=load_cases(folder / "inputs.npz", INPUTS),
        outputs=load_cases(folder / "outputs.npz", OUTPUTS),
        meta={
            "onnx_sha256": file_sha256(exported),
            "source": entry.source,
            "route": route,
            "framework": report.framework,
            "onnxbridge": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    data = folder / data_name(exported)
    return StagedFiles(str(folder), exported.name, _FIXTURES, data.name if data.exists() else None)


def publish_update(entry: ModelEntry, root: Path, state: Path, staged: StagedFiles) -> None:
    """The submitting process's part: publish ``staged`` over the entry's committed files (bytes in
    transit are first written into a scratch folder under ``state``); the scratch folder is removed."""
    local = staged if staged.folder is not None else staged.unpacked(state)
    folder = Path(local.folder or "")
    try:
        onnx_out, fixtures_out = root / entry.onnx, root / entry.fixtures
        data_out = onnx_out.with_name(data_name(onnx_out))
        onnx_out.parent.mkdir(parents=True, exist_ok=True)
        fixtures_out.parent.mkdir(parents=True, exist_ok=True)
        files = {onnx_out: folder / local.onnx, fixtures_out: folder / local.fixtures}
        if local.data:
            files[data_out] = folder / local.data
        with _sigint_held():
            publish(files, remove=[data_out] if data_out not in files and data_out.exists() else [])
    finally:
        local.discard()


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """Hold Ctrl-C back while a publication commits (main thread, POSIX); it arrives right after."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
