"""Safe file output: check the target first, write to a temp file, rename into place."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError, UsageError
from .publish import PREFIX, fsync_file, recover, temp_name

__all__ = ["check_output_path", "atomic_path", "atomic_write_bytes", "atomic_write_text"]


def check_output_path(out: str | Path, *inputs: str | Path | None, what: str = "output") -> Path:
    """Validate an output path before any work starts.

    Refuses an output equal to one of the inputs, a directory as output, and a parent
    folder that is missing or not writable.
    """
    path = Path(out).expanduser()
    for src in inputs:
        if src is None:
            continue
        s = Path(str(src).split(":")[0] if ":" in str(src) and not Path(str(src)).exists() else src)
        if _same_file(path, s):
            raise UsageError(
                f"{what} path {path} is the same file as the input {s}",
                "choose another -o path; onnxbridge never overwrites its input",
            )
    if path.is_dir():
        raise UsageError(f"{what} path {path} is a directory", "give a file path, e.g. -o model.onnx")
    parent = path.parent
    if not parent.is_dir():
        raise InputError(
            f"{what} directory {parent} does not exist", f"create it first (mkdir -p {parent}) or choose another path"
        )
    if not _writable(parent):
        raise InputError(f"{what} directory {parent} is not writable", "choose a folder you can write to")
    recover(parent)  # what a killed run left there: finished if committed, else removed
    return path


def _writable(folder: Path) -> bool:
    """Really try: os.access says yes to root on read-only or virtual file systems."""
    try:
        fd, probe = tempfile.mkstemp(prefix=f"{PREFIX}{os.getpid()}-probe-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return True


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``target`` (named ``.onnxbridge-tmp-PID-...``, so a run killed
    meanwhile leaves something :func:`~onnxbridge.publish.recover` knows to remove); on success
    flush it to disk and rename it over ``target``, else delete it."""
    target = Path(target)
    tmp_path = target.parent / temp_name(target.name + (suffix if suffix is not None else ".tmp"))
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    os.close(fd)
    try:
        yield tmp_path
        if tmp_path.exists():
            fsync_file(tmp_path)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def atomic_write_bytes(target: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    return atomic_write_bytes(target, text.encode("utf-8"))
