"""The record of the last passing check of each model, keyed by content hashes.

``.onnxbridge/cache.json`` under the project root holds, per model, the fingerprint of its last
pass: the manifest entry's digest, the sha256 of the ONNX file, of the fixtures and of every source
file, and the versions of the packages that produce and run the model. Two keys come from it:

- the *replay key* (entry, ONNX file, fixtures, onnx / onnxruntime / onnxbridge versions): when it
  changed, the golden fixtures are replayed on the committed ONNX file;
- the *source key* (entry, fixtures, source files, framework and exporter versions): when it
  changed, the model is also re-checked against its source and re-exported.

Hashes are reused while a file's size and mtime are unchanged, so an unchanged project is checked
from ``stat`` calls alone. Nothing here imports numpy, onnx, onnxruntime or a framework.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .._version import __version__
from ..fsutil import atomic_write_text
from ..publish import locked

__all__ = [
    "CACHE_PATH",
    "state_dir",
    "FileHasher",
    "file_sha256",
    "Fingerprint",
    "Cache",
    "package_versions",
    "replay_packages",
    "source_packages",
]

CACHE_PATH = Path(".onnxbridge") / "cache.json"
FORMAT = 1
RACY_S = 2.0  # a file modified this recently may change again within the same mtime tick

_RUNTIME = ("onnx", "onnxruntime", "onnxruntime-gpu")


@functools.lru_cache(maxsize=None)
def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def package_versions(names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions (``-`` when absent), read from package metadata without importing anything."""
    out = {n: _version(n) for n in names}
    out["onnxbridge"] = __version__
    return out


def replay_packages() -> tuple[str, ...]:
    """Packages whose version matters when the ONNX file is replayed."""
    return _RUNTIME


def source_packages(framework: str | None) -> tuple[str, ...]:
    """Packages whose version matters when the model is exported from its source."""
    from ..converters.registry import default_registry

    return _RUNTIME + default_registry().export_packages(framework)


class FileHasher:
    """sha256 of project files, reusing a recorded hash while the file's size and mtime are unchanged."""

    def __init__(self, root: Path, recorded: dict[str, Any] | None = None) -> None:
        self.root = root
        self._recorded = recorded or {}
        self.table: dict[str, list] = {}  # rel -> [size, mtime_ns, sha256], for this run
        self.hashed = 0  # files actually read (for tests and the bench)

    def digest(self, rel: str) -> str | None:
        """The file's sha256, or None when it does not exist."""
        if rel in self.table:
            return self.table[rel][2]
        path = self.root / rel
        try:
            st = path.stat()
        except OSError:
            return None
        if not path.is_file():
            return None
        old = self._recorded.get(rel)
        if isinstance(old, list) and len(old) == 3 and old[0] == st.st_size and old[1] == st.st_mtime_ns:
            self.table[rel] = old
            return old[2]
        sha = file_sha256(path)
        self.hashed += 1
        racy = time.time() - st.st_mtime_ns / 1e9 < RACY_S
        # a racy entry is stored without its stat signature, so it is hashed again next time
        self.table[rel] = [-1 if racy else st.st_size, -1 if racy else st.st_mtime_ns, sha]
        return sha


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks (an ONNX file or its weights may be gigabytes)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Fingerprint:
    """Everything a model's verdict depends on, as hashes and versions."""

    entry: str
    onnx: str
    fixtures: str
    sources: dict[str, str] = field(default_factory=dict)
    runtime_versions: dict[str, str] = field(default_factory=dict)
    export_versions: dict[str, str] = field(default_factory=dict)

    @property
    def replay_key(self) -> str:
        return _key("replay", self.entry, self.onnx, self.fixtures, self.runtime_versions)

    @property
    def source_key(self) -> str:
        return _key("source", self.entry, self.fixtures, self.sources, self.export_versions)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fingerprint:
        return cls(
            entry=str(d.get("entry", "")),
            onnx=str(d.get("onnx", "")),
            fixtures=str(d.get("fixtures", "")),
            sources=dict(d.get("sources", {})),
            runtime_versions=dict(d.get("runtime_versions", {})),
            export_versions=dict(d.get("export_versions", {})),
        )

    def changes(self, old: Fingerprint, *, source: bool) -> list[str]:
        """Human-readable differences from ``old``: what made a check run."""
        out: list[str] = []
        if self.entry != old.entry:
            out.append("manifest entry changed")
        if not source and self.onnx != old.onnx:
            out.append("ONNX file changed")
        if self.fixtures != old.fixtures:
            out.append("fixtures changed")
        if source:
            changed = sorted(
                p for p in set(self.sources) | set(old.sources) if self.sources.get(p) != old.sources.get(p)
            )
            if changed:
                more = f" (+{len(changed) - 3} more)" if len(changed) > 3 else ""
                out.append(f"source changed: {', '.join(changed[:3])}{more}")
        mine = self.export_versions if source else self.runtime_versions
        theirs = old.export_versions if source else old.runtime_versions
        for pkg in sorted(set(mine) | set(theirs)):
            a, b = theirs.get(pkg, "-"), mine.get(pkg, "-")
            if a != b:
                out.append(f"{pkg} {a} -> {b}")
        return out


class Cache:
    """``.onnxbridge/cache.json``: files' stat signatures and hashes, and each model's last pass."""

    def __init__(
        self, path: Path, data: dict[str, Any] | None = None, note: str | None = None, text: str | None = None
    ) -> None:
        self.path = path
        self._text = text  # as read, so that an unchanged cache is not rewritten
        data = data or {}
        self.files: dict[str, Any] = data.get("files", {}) if isinstance(data.get("files"), dict) else {}
        models = data.get("models", {})
        self.models: dict[str, dict[str, Any]] = models if isinstance(models, dict) else {}
        imports = data.get("imports", {})
        self.imports: dict[str, list] = imports if isinstance(imports, dict) else {}  # deps' per-file imports
        self.note = note
        self._recorded: set[str] = set()  # models whose pass this run recorded

    @classmethod
    def load(cls, root: Path) -> Cache:
        """The project's cache; a missing, unreadable or foreign one is an empty cache (with a note)."""
        path = root / CACHE_PATH
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path)
        except OSError as e:
            return cls(path, note=f"cache {path} unreadable ({e.strerror}); checking every model")
        try:
            data = json.loads(text)
        except ValueError:
            return cls(path, note=f"cache {path} is corrupt; checking every model")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return cls(path, note=f"cache {path} has another format; checking every model")
        return cls(path, data, text=text)

    def last_pass(self, name: str) -> tuple[Fingerprint, dict[str, Any]] | None:
        """The fingerprint and record of a model's last recorded pass."""
        rec = self.models.get(name)
        if not isinstance(rec, dict) or not isinstance(rec.get("fingerprint"), dict):
            return None
        return Fingerprint.from_dict(rec["fingerprint"]), rec

    def record_pass(self, name: str, fp: Fingerprint, files: list[str], *, framework: str | None, summary: str) -> None:
        """Remember that ``name`` passed with fingerprint ``fp``; ``files`` are the project files it hashed."""
        self._recorded.add(name)
        self.models[name] = {
            "fingerprint": asdict(fp),
            "files": sorted(set(files)),
            "framework": framework,
            "passed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "summary": summary,
        }

    def save(self, files: dict[str, list], keep: set[str]) -> str | None:
        """Merge this run's passes into the cache on disk and write it atomically, under a lock on
        ``.onnxbridge/`` (two ``check`` runs at once each keep the other's passes); returns a note
        instead of raising when it cannot be written."""
        try:
            folder = state_dir(self.path.parent.parent)
            with locked([folder]):
                return self._merge_and_write(files, keep)
        except OSError as e:
            return f"cache not written ({self.path}: {e.strerror or e})"

    def _merge_and_write(self, files: dict[str, list], keep: set[str]) -> str | None:
        on_disk = Cache.load(self.path.parent.parent)
        models = {**on_disk.models, **{k: self.models[k] for k in self._recorded if k in self.models}}
        if on_disk._text is None and not on_disk.models:  # no cache (or an unreadable one): ours
            models = {**self.models, **models}
        models = {k: v for k, v in models.items() if k in keep}
        used = {p for rec in models.values() for p in _paths(rec)}
        merged = {**self.files, **on_disk.files, **files}
        imports = {**on_disk.imports, **self.imports}
        data = {
            "format": FORMAT,
            "onnxbridge": __version__,
            "files": {k: v for k, v in merged.items() if k in used},
            "models": models,
            "imports": {k: v for k, v in imports.items() if k in used},
        }
        text = json.dumps(data, indent=1, sort_keys=True) + "\n"
        if text == on_disk._text:
            return None
        atomic_write_text(self.path, text)
        self._text = text
        return None


def state_dir(root: Path) -> Path:
    """``.onnxbridge/`` under the project root, created with a ``.gitignore`` that keeps it out of git."""
    folder = root / CACHE_PATH.parent
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        with contextlib.suppress(OSError):
            ignore.write_text("# onnxbridge check's local cache; never commit it\n*\n")
    return folder


def _paths(rec: dict[str, Any]) -> list[str]:
    files = rec.get("files", [])
    return [str(p) for p in files] if isinstance(files, list) else []
