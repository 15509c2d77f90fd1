"""The manifest of ``onnxbridge check``: the models a project declares, read with tomllib.

Models are declared in ``onnxbridge.toml`` (``[[models]]`` tables) or in ``pyproject.toml``
(``[[tool.onnxbridge.models]]``). Optional keys given at the top of the table (next to ``models``)
are defaults for every model. Paths are relative to the manifest's folder, the project root.

Every problem is a :class:`ManifestError` (exit 2) that names the file and the line: tomllib's
own errors carry a line number, and for a semantic error we find the line of the model's entry
(or of the offending key) in the text.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError
from ..options import (
    PROVIDERS,
    ConvertOptions,
    ExportOptions,
    OptimizeOptions,
    ParityConfig,
    Tolerances,
)
from .manifest_keys import OPTION_KEYS, ManifestKey, accepted, entry_keys, option_keys
from .results import Location

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

__all__ = ["ManifestError", "ModelEntry", "Manifest", "find_manifest", "load_manifest", "MANIFEST_NAME"]

MANIFEST_NAME = "onnxbridge.toml"

_REQUIRED = ("name", "source", "onnx")
# where a model's work is scheduled, not what it checks: left out of the entry's digest (the cache key)
_SCHEDULING = ("cpus", "memory_gb")


class ManifestError(InputError):
    """A manifest that is malformed or names things that do not exist (exit 2); knows its line."""

    def __init__(
        self, message: str, hint: str | None = None, *, path: Path | None = None, line: int | None = None
    ) -> None:
        super().__init__(message, hint)
        self.path = path
        self.line = line


@dataclass(frozen=True)
class ModelEntry:
    """One declared model. Paths are as written (relative to the project root)."""

    name: str
    source: str
    onnx: str
    fixtures: str
    inputs: tuple[str, ...] = ()
    atol: float | None = None
    rtol: float | None = None
    provider: str = "auto"
    framework: str | None = None
    opset: int | None = None
    simplify: bool = True
    reexport: bool = True
    seed: int = 0
    trust_model: bool = False
    watch: tuple[str, ...] = ()
    external_data: bool = False
    routes: tuple[str, ...] = ()
    task: str | None = None
    fallback: str = "warn"
    tolerances: tuple[str, ...] = ()  # per output, as --tol NAME=ATOL[,RTOL]
    optimize: str | None = None
    fuse_transformer: str | None = None
    simplifier: str = "onnxsim"
    cpus: float = 1.0  # the resources a Ray task asks for (a GPU too when provider is cuda or tensorrt)
    memory_gb: float | None = None
    line: int = 0
    digest: str = ""  # sha256 of the entry's settings (defaults merged), for the cache

    @property
    def source_file(self) -> str | None:
        """The Python file of a ``file.py:NAME`` source, as written."""
        file_part, sep, attr = self.source.rpartition(":")
        return file_part if sep and file_part.endswith(".py") and attr else None

    def _fields(self, owner: type) -> dict[str, Any]:
        """The entry's values of the manifest keys that feed ``owner``, by that class's field names."""
        return {field: getattr(self, key) for key, (cls, field) in OPTION_KEYS.items() if cls is owner}

    def export_options(self) -> ExportOptions:
        """How the entry's source is loaded and exported."""
        return ExportOptions(**self._fields(ExportOptions))

    def parity_config(self, **files: Any) -> ParityConfig:
        """How the entry is validated; ``files`` are fixture paths (``save_inputs=...``)."""
        tol = self._fields(Tolerances)
        tolerances = Tolerances.build(tol["atol"], tol["rtol"], tol["per_output"])
        return ParityConfig(tolerances=tolerances, **self._fields(ParityConfig), **files)

    def convert_options(self, **files: Any) -> ConvertOptions:
        """A re-export of the entry, validated against its source."""
        return ConvertOptions(
            self.export_options(),
            self.parity_config(**files),
            OptimizeOptions(**self._fields(OptimizeOptions)),
            **self._fields(ConvertOptions),
        )


# every key a model may have: ModelEntry's own fields, and the fields of the option objects it builds
_KEYS: dict[str, ManifestKey] = {**entry_keys(ModelEntry, skip=("line", "digest")), **option_keys()}
# keys that may be given once, at the top, as defaults for every model
_DEFAULTABLE = tuple(k for k, key in _KEYS.items() if key.defaultable)


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest: where it is, the project root, and the models in declaration order."""

    path: Path
    root: Path
    models: tuple[ModelEntry, ...]

    def where(self, entry: ModelEntry) -> str:
        """``onnxbridge.toml:12``: the file and line of a model's entry."""
        return str(self.location(entry))

    def location(self, entry: ModelEntry) -> Location:
        """The file (as shown to the user) and line of a model's entry."""
        return Location(_display(self.path), entry.line)

    def resolve(self, rel: str) -> Path:
        """A path of the manifest, relative to the root."""
        return self.root / rel

    def source_for_load(self, entry: ModelEntry) -> str:
        """The SOURCE with its file made absolute, so it loads from any working directory."""
        if entry.source_file is not None:
            attr = entry.source.rpartition(":")[2]
            return f"{self.root / entry.source_file}:{attr}"
        candidate = self.root / entry.source
        if candidate.exists():
            return str(candidate)
        return entry.source

    def select(self, names: tuple[str, ...] | list[str] | None) -> tuple[ModelEntry, ...]:
        """The entries named (all of them for none); an unknown name is a ``UsageError``."""
        if not names:
            return self.models
        known = {m.name: m for m in self.models}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UsageError(
                f"--model {', '.join(unknown)}: no such model in {_display(self.path)}",
                f"declared models: {', '.join(known) or 'none'}",
            )
        return tuple(m for m in self.models if m.name in set(names))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def find_manifest(start: str | Path | None = None) -> Path:
    """``onnxbridge.toml``, or a ``pyproject.toml`` with ``[tool.onnxbridge]``, in ``start`` or a parent.

    The search stops at the repository root (a folder holding ``.git``).
    """
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        own = folder / MANIFEST_NAME
        if own.is_file():
            return own
        py = folder / "pyproject.toml"
        if py.is_file() and re.search(r"^\s*\[+\s*tool\s*\.\s*onnxbridge\b", _read(py), re.M):
            return py
        if (folder / ".git").exists():
            break
    raise UsageError(
        f"no {MANIFEST_NAME} (or [tool.onnxbridge] in pyproject.toml) in {here} or its parents",
        "declare your models in onnxbridge.toml ([[models]] with name, source, onnx; see docs/ci.md), "
        "or pass --config FILE",
    )


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(f"{_display(path)} is not UTF-8 text", "save it as UTF-8", path=path) from e
    except OSError as e:
        raise ManifestError(f"cannot read {_display(path)}: {e.strerror or e}", "check the path", path=path) from e


def load_manifest(config: str | Path | None = None, *, cwd: str | Path | None = None) -> Manifest:
    """Find (or take) the manifest, parse it and check every entry; ``ManifestError`` on any problem."""
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise ManifestError(
                f"manifest {config} does not exist", "pass the path of onnxbridge.toml or pyproject.toml", path=path
            )
    else:
        path = find_manifest(cwd)
    text = _read(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        line = int(m.group(1)) if m else (len(text.splitlines()) or 1)
        raise ManifestError(
            f"{_display(path)}:{line}: invalid TOML: {e}", "fix the syntax at that line", path=path, line=line
        ) from e
    return _parse(path, text, data)


def _parse(path: Path, text: str, data: dict[str, Any]) -> Manifest:
    shown = _display(path)
    tool = data.get("tool", {}).get("onnxbridge") if isinstance(data.get("tool"), dict) else None
    if tool is not None:
        table, header = tool, "tool.onnxbridge.models"
    else:
        table, header = data, "models"
    if not isinstance(table, dict) or "models" not in table:
        raise ManifestError(
            f"{shown}:1: no models declared",
            f"add a [[{header}]] table with name, source and onnx for each model",
            path=path,
            line=1,
        )
    models = table["models"]
    lines = _entry_lines(text, header)
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models) or not models:
        line = _key_line(text, "models", 1, len(text.splitlines()) + 1) or (lines[0] if lines else 1)
        raise ManifestError(
            f"{shown}:{line}: 'models' must be a non-empty array of tables",
            f"declare each model as a [[{header}]] table",
            path=path,
            line=line,
        )
    defaults = {k: v for k, v in table.items() if k != "models"}
    for key, value in defaults.items():
        line = _key_line(text, key, 1, lines[0] if lines else len(text.splitlines()) + 1) or 1
        if key not in _DEFAULTABLE:
            raise ManifestError(
                f"{shown}:{line}: unknown top-level key {key!r}",
                f"keys allowed as defaults for every model: {', '.join(_DEFAULTABLE)}",
                path=path,
                line=line,
            )
        what = _KEYS[key].what
        if not accepted(_KEYS[key], value):
            raise ManifestError(
                f"{shown}:{line}: default {key} must be {what}, not {type(value).__name__} {value!r}",
                f"write {key} as {what}",
                path=path,
                line=line,
            )
    entries: list[ModelEntry] = []
    seen: dict[str, int] = {}
    written: dict[str, str] = {}  # the files --update writes -> whose they are
    root = path.resolve().parent
    total = len(text.splitlines()) + 1
    for i, raw in enumerate(models):
        start = lines[i] if i < len(lines) else 1
        end = lines[i + 1] if i + 1 < len(lines) else total
        entry = _entry(path, text, root, {**defaults, **raw}, start, end)
        if entry.name in seen:
            raise ManifestError(
                f"{shown}:{start}: model name {entry.name!r} is declared twice (first at line {seen[entry.name]})",
                "give every model a unique name",
                path=path,
                line=start,
            )
        seen[entry.name] = start
        for key in ("onnx", "fixtures"):
            rel = Path(getattr(entry, key)).as_posix()
            if rel in written:
                line = _key_line(text, key, start, end) or start
                raise ManifestError(
                    f"{shown}:{line}: model {entry.name!r}: {key} {rel} is also the {written[rel]}",
                    "give every model its own ONNX file and fixtures",
                    path=path,
                    line=line,
                )
            written[rel] = f"{key} file of model {entry.name!r}"
        entries.append(entry)
    return Manifest(path=path, root=root, models=tuple(entries))


def _entry_lines(text: str, header: str) -> list[int]:
    """Line numbers (1-based) of each ``[[header]]`` table, in order."""
    parts = r"\s*\.\s*".join(re.escape(p) for p in header.split("."))
    pat = re.compile(rf"^\s*\[\[\s*{parts}\s*\]\]")
    return [n for n, line in enumerate(text.splitlines(), 1) if pat.match(line)]


def _key_line(text: str, key: str, start: int, end: int) -> int | None:
    """The line of ``key = ...`` between lines ``start`` and ``end`` (exclusive)."""
    pat = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=")
    for n, line in enumerate(text.splitlines()[start - 1 : end - 1], start):
        if pat.match(line):
            return n
    return None


def _entry(path: Path, text: str, root: Path, raw: dict[str, Any], start: int, end: int) -> ModelEntry:
    shown = _display(path)
    label = f"model {raw['name']!r}" if isinstance(raw.get("name"), str) else "model"

    def fail(key: str | None, message: str, hint: str) -> ManifestError:
        line = (_key_line(text, key, start, end) if key else None) or start
        return ManifestError(f"{shown}:{line}: {label}: {message}", hint, path=path, line=line)

    for key in raw:
        if key not in _KEYS:
            raise fail(key, f"unknown key {key!r}", f"known keys: {', '.join(_KEYS)}")
    for key in _REQUIRED:
        if key not in raw:
            raise fail(None, f"missing required key {key!r}", f"every model needs {', '.join(_REQUIRED)}")
    for key, value in raw.items():
        what = _KEYS[key].what
        if not accepted(_KEYS[key], value):
            shown_value = f"{type(value).__name__} {value!r}"
            raise fail(key, f"{key} must be {what}, not {shown_value}", f"write {key} as {what}")
    name = raw["name"]
    if not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
        raise fail("name", f"name {name!r} may use letters, digits, '_', '.', '-' only", "rename the model")
    for key in ("atol", "rtol"):
        if key in raw and not raw[key] >= 0:
            raise fail(key, f"{key} must be >= 0, got {raw[key]}", "tolerances are non-negative numbers")
    for key in _SCHEDULING:
        if key in raw and not raw[key] > 0:
            raise fail(key, f"{key} must be > 0, got {raw[key]}", f"ask for a positive amount, e.g. {key} = 2")
    provider = str(raw.get("provider", "auto")).lower()
    if provider not in PROVIDERS:
        raise fail("provider", f"unknown provider {raw['provider']!r}", f"use one of {', '.join(PROVIDERS)}")
    if "framework" in raw:
        from ..converters.registry import default_registry

        names = default_registry().names()
        if raw["framework"] not in names:
            raise fail("framework", f"unknown framework {raw['framework']!r}", f"use one of {', '.join(names)}")
    _check_inputs(raw.get("inputs", []), fail)
    _check_source(raw["source"], root, fail)
    onnx = raw["onnx"]
    if not onnx.lower().endswith(".onnx"):
        raise fail("onnx", f"onnx path {onnx!r} does not end in .onnx", "name the committed ONNX file, e.g. model.onnx")
    fixtures = raw.get("fixtures") or str(Path(onnx).with_suffix(".npz").as_posix())
    if not fixtures.lower().endswith(".npz"):
        raise fail("fixtures", f"fixtures path {fixtures!r} does not end in .npz", "name an .npz file")
    if Path(fixtures) == Path(onnx):
        raise fail("fixtures", "fixtures and onnx name the same file", "give fixtures its own .npz path")
    for key, rel in (("onnx", onnx), ("fixtures", fixtures)):
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise fail(key, f"{key} path {rel!r} leaves the project folder", "give a path relative to the manifest")
    checked = {k: v for k, v in raw.items() if k not in _SCHEDULING}
    digest = hashlib.sha256(json.dumps(checked, sort_keys=True, default=str).encode()).hexdigest()
    try:
        tolerances = Tolerances.build(None, None, raw.get("tolerances")).per_output
    except UsageError as e:
        raise fail("tolerances", e.message.replace("--tol ", "tolerances ", 1), e.hint or "") from e
    entry = ModelEntry(
        name=name,
        source=raw["source"],
        onnx=onnx,
        fixtures=fixtures,
        inputs=tuple(raw.get("inputs", ())),
        atol=float(raw["atol"]) if "atol" in raw else None,
        rtol=float(raw["rtol"]) if "rtol" in raw else None,
        provider=provider,
        framework=raw.get("framework"),
        opset=raw.get("opset"),
        simplify=raw.get("simplify", True),
        reexport=raw.get("reexport", True),
        seed=raw.get("seed", 0),
        trust_model=raw.get("trust_model", False),
        watch=tuple(raw.get("watch", ())),
        external_data=raw.get("external_data", False),
        cpus=float(raw.get("cpus", 1.0)),
        memory_gb=float(raw["memory_gb"]) if "memory_gb" in raw else None,
        routes=tuple(raw.get("routes", ())),
        task=raw.get("task"),
        fallback=raw.get("fallback", "warn"),
        tolerances=tuple(f"{n}={t.atol:g}" + ("" if t.rtol is None else f",{t.rtol:g}") for n, t in tolerances),
        optimize=raw.get("optimize"),
        fuse_transformer=raw.get("fuse_transformer"),
        simplifier=raw.get("simplifier", "onnxsim"),
        line=start,
        digest=digest,
    )
    try:  # the option objects check the values (choices, ranges) as they do for the CLI's flags
        entry.convert_options()
    except UsageError as e:
        raise fail(_key_named(e.message, raw), e.message, e.hint or "see docs/ci.md for the manifest keys") from e
    return entry


def _key_named(message: str, raw: dict[str, Any]) -> str | None:
    """The key a message from an option object is about (its flag or key name appears in it), if any."""
    for key in raw:
        if key in OPTION_KEYS and (key in message or f"--{key.replace('_', '-')}" in message):
            return key
    return None


def _check_inputs(inputs: list[str], fail) -> None:
    from ..specs import parse_input_specs

    try:
        parse_input_specs(list(inputs))
    except UsageError as e:
        raise fail(
            "inputs",
            e.message.replace("--input ", "input ", 1),
            'write each input as NAME:DIMS[:DTYPE], e.g. "x:batch,3,32,32"',
        ) from e


def _check_source(source: str, root: Path, fail) -> None:
    """The source's file or folder must exist (a ``module:NAME`` outside the project cannot be checked here)."""
    file_part, sep, attr = source.rpartition(":")
    if sep and file_part.endswith(".py"):
        if not attr or not re.fullmatch(r"[A-Za-z_][\w.]*", attr):
            raise fail("source", f"{attr!r} in source {source!r} is not a Python name", "write file.py:NAME")
        if not (root / file_part).is_file():
            raise fail("source", f"source file {file_part} does not exist", "fix the path (relative to the manifest)")
        return
    if source.lower().endswith(".onnx"):
        raise fail(
            "source", f"source {source!r} is an ONNX file", "name the model it is exported from, e.g. models.py:net"
        )
    if (root / source).exists():
        return
    if re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_][\w.]*", source):
        return  # package.module:NAME, resolved at load time
    raise fail(
        "source",
        f"source {source!r} does not exist",
        "write file.py:NAME, package.module:NAME, or the path of a model file or SavedModel folder",
    )
