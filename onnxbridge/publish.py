"""Crash-safe outputs: files that belong together reach their targets together, or not at all.

``publish({target: new_file, ...}, remove=[...])`` (an ONNX file and its external data, a model and
its fixtures):

1. each new file is moved (renamed; copied across file systems) into a staging folder beside its
   target, ``.onnxbridge-tmp-PID-TOKEN/`` (one per target folder), and fsynced;
2. a journal, ``.onnxbridge-tmp-PID-TOKEN.journal`` beside the first target, lists every staged file
   with its target and the files to remove; writing it (temp file, fsync, rename) is the commit point;
3. each staged file is renamed over its target, the files to remove are removed, the folders
   fsynced, and the journal deleted.

A ``kill -9`` before the journal leaves only staging folders and temp files: :func:`recover` (run by
the next command that writes there) deletes them once their writer is gone, and the old files
stand. After the journal, :func:`recover` finishes the renames, and the new files stand. A reader
that meets a journal naming its file (:func:`pending`) says the set is incomplete.

Target folders are locked (``flock`` on the folder itself, no lock file left behind) while a
publication commits or is recovered, so two runs never interleave their renames; readers that
need a consistent pair take the same locks shared (:func:`locked`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

__all__ = ["PREFIX", "publish", "recover", "pending", "locked", "scratch_dir", "temp_name", "fsync_file"]

PREFIX = ".onnxbridge-tmp-"
JOURNAL = ".journal"
_POINTER = "JOURNAL"  # inside a staging folder: the journal's path, relative to that folder
STALE_S = 24 * 3600.0  # a temp file whose writer's pid is reused is stale after this long
_Target = TypeVar("_Target", str, Path, "str | Path")  # Mapping keys are invariant: dict[Path, Path] is fine too


def temp_name(name: str = "") -> str:
    """A fresh temp name of ours: ``.onnxbridge-tmp-PID-TOKEN[-NAME]`` (the pid tells when it is stale)."""
    base = f"{PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    return f"{base}-{name}" if name else base


def scratch_dir(near: str | Path) -> Path:
    """A new temp folder inside ``near`` (same file system as its targets, so publishing is a rename)."""
    folder = Path(near)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / temp_name()
    path.mkdir()
    return path


def fsync_file(path: Path) -> None:
    """Flush a file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be fsynced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def locked(folders: Iterable[str | Path], *, shared: bool = False) -> Iterator[None]:
    """Hold ``flock`` on each folder (sorted, so two holders never deadlock); best effort where
    the platform or file system has no such lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fds: list[int] = []
    try:
        for folder in sorted({str(Path(f).resolve()) for f in folders}):
            try:
                fd = os.open(folder, os.O_RDONLY)
            except OSError:
                continue
            fds.append(fd)
            with contextlib.suppress(OSError):  # e.g. some network file systems
                fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        for fd in reversed(fds):
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def publish(files: Mapping[_Target, str | Path], remove: Iterable[str | Path] = ()) -> None:
    """Move each new file (value) over its target (key), all together or none; ``remove`` lists
    targets that must be gone afterwards (an external-data file the new model no longer has).

    The new files are consumed (moved). Targets' folders must exist.
    """
    pairs = [(Path(t).absolute(), Path(s)) for t, s in files.items()]
    if not pairs:
        return
    gone = [Path(r).absolute() for r in remove]
    recover(*{t.parent for t, _ in pairs}, *{g.parent for g in gone})  # an older run's commit lands first
    token = temp_name()
    staging: dict[Path, Path] = {}
    staged: list[tuple[Path, Path]] = []
    journal = pairs[0][0].parent / f"{token}{JOURNAL}"
    committed = False
    try:
        for target, source in pairs:
            folder = staging.get(target.parent)
            if folder is None:
                folder = staging[target.parent] = target.parent / token
                folder.mkdir()
                (folder / _POINTER).write_text(os.path.relpath(journal, folder))
            dest = folder / target.name
            _move(source, dest)
            fsync_file(dest)
            staged.append((dest, target))
        for folder in staging.values():
            _fsync_dir(folder)
        with locked({t.parent for _, t in staged} | {g.parent for g in gone}):
            _write_journal(journal, staged, gone)
            committed = True
            _roll_forward(journal)
    finally:
        if not committed:  # once committed, what is left is finished by recover(), never undone
            for folder in staging.values():
                shutil.rmtree(folder, ignore_errors=True)


def _move(source: Path, dest: Path) -> None:
    try:
        os.replace(source, dest)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        shutil.copyfile(source, dest)
        source.unlink()


def _write_journal(journal: Path, staged: list[tuple[Path, Path]], gone: list[Path]) -> None:
    base = journal.parent
    data = {
        "files": [[os.path.relpath(s, base), os.path.relpath(t, base)] for s, t in staged],
        "remove": [os.path.relpath(g, base) for g in gone],
    }
    tmp = base / f"{journal.name}.part"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, journal)  # the commit point
    _fsync_dir(base)


def _read_journal(journal: Path) -> tuple[list[tuple[Path, Path]], list[Path]] | None:
    try:
        data = json.loads(journal.read_text(encoding="utf-8"))
        base = journal.parent

        def at(rel: str) -> Path:
            return Path(os.path.normpath(base / rel)).absolute()

        return [(at(s), at(t)) for s, t in data["files"]], [at(r) for r in data.get("remove", [])]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _roll_forward(journal: Path) -> None:
    """Finish a committed publication (the caller holds the target folders' locks)."""
    read = _read_journal(journal)
    if read is None:
        return
    files, gone = read
    for staged, target in files:
        if staged.exists():
            os.replace(staged, target)
    for path in gone:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    for folder in {t.parent for _, t in files} | {g.parent for g in gone}:
        _fsync_dir(folder)
    for folder in {s.parent for s, _ in files}:
        shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        journal.unlink()
    _fsync_dir(journal.parent)


def pending(path: str | Path) -> Path | None:
    """The journal of a committed but unfinished publication that includes ``path``, if any."""
    path = Path(path).absolute()
    folder = path.parent
    try:
        entries = [p for p in folder.iterdir() if p.name.startswith(PREFIX)]
    except OSError:
        return None
    for entry in entries:
        journal = entry if entry.name.endswith(JOURNAL) else _journal_of(entry)
        if journal is None or not journal.exists():
            continue
        read = _read_journal(journal)
        if read is None:
            continue
        files, gone = read
        if any(t.absolute() == path for _, t in files) or any(g.absolute() == path for g in gone):
            return journal
    return None


def _journal_of(staging: Path) -> Path | None:
    pointer = staging / _POINTER
    try:
        return Path(os.path.normpath(staging / pointer.read_text().strip())) if staging.is_dir() else None
    except OSError:
        return None


def recover(*folders: str | Path) -> list[str]:
    """Finish committed publications and delete our stale temp files in ``folders``; returns what
    was done, one line each (for notes)."""
    done: list[str] = []
    for folder in {Path(f).absolute() for f in folders}:
        try:
            entries = sorted(p for p in folder.iterdir() if p.name.startswith(PREFIX))
        except OSError:
            continue
        for entry in entries:
            journal = entry if entry.name.endswith(JOURNAL) else _journal_of(entry)
            if journal is not None and journal.exists():
                done.extend(_recover_journal(journal))
            elif entry.exists() and _stale(entry):
                _remove(entry)
                done.append(f"removed {entry} (left by an interrupted run)")
    return done


def _recover_journal(journal: Path) -> list[str]:
    read = _read_journal(journal)
    if read is None:
        if _stale(journal):  # a journal that never finished being written is no commit
            _remove(journal)
        return []
    files, gone = read
    with locked({t.parent for _, t in files} | {g.parent for g in gone}):
        if not journal.exists():  # its writer (alive, holding the lock) finished it meanwhile
            return []
        _roll_forward(journal)
    return [f"finished an interrupted write of {', '.join(str(t) for _, t in files)}"]


def _stale(entry: Path) -> bool:
    """Our temp file or folder whose writer is gone (or that is older than a day)."""
    pid_text = entry.name[len(PREFIX) :].split("-", 1)[0]
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    try:
        age = time.time() - entry.lstat().st_mtime
    except OSError:
        return False
    if age > STALE_S:
        return True
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed child not yet reaped still has a pid; its temp files are as stale as a dead one's."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            entry.unlink()
