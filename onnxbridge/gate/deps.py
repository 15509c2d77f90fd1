"""The files a model's SOURCE depends on, found without importing anything.

For ``file.py:NAME`` (and a ``package.module:NAME`` that lives in the project) the Python file and
every project-local module it imports, followed transitively by reading the imports with ``ast``;
for a model file its bytes, for a SavedModel folder every file in it; plus the ``watch`` globs of
the entry. Modules outside the project (installed packages) are covered by the package versions
that go into the cache key, not by file hashes.

There is no cap: every file the imports reach is tracked, however many. The imports each file makes
are remembered by its size and mtime (``imports``, kept in the gate's cache), so a rescan after one
file changed parses that file only. Past ``MANY_FILES`` a note says how many files a model tracks.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

from .manifest import ModelEntry

__all__ = ["SourceFiles", "source_files"]

MANY_FILES = 5000  # past this a note says so (the first check hashes them all)


@dataclass(frozen=True)
class SourceFiles:
    """Project-relative POSIX paths of the files a model depends on, and anything left untracked."""

    files: tuple[str, ...]
    notes: tuple[str, ...] = ()


def source_files(entry: ModelEntry, root: Path, imports: dict[str, list] | None = None) -> SourceFiles:
    """Every project file whose change means the model must be re-exported and re-validated.

    ``imports`` (project-relative path -> ``[size, mtime_ns, [[level, module], ...]]``) remembers each
    scanned file's imports; it is read and updated in place.
    """
    root = root.resolve()
    found: set[Path] = set()
    notes: list[str] = []
    start: Path | None = None
    if entry.source_file is not None:
        start = root / entry.source_file
    elif (root / entry.source).is_file():
        found.add(root / entry.source)
    elif (root / entry.source).is_dir():
        found.update(p for p in (root / entry.source).rglob("*") if p.is_file())
    else:  # package.module:NAME
        module = entry.source.partition(":")[0]
        start = _resolve_module(module, [root, root / "src"])
        if start is None:
            notes.append(
                f"source module {module} is not a file in the project; its changes are not tracked "
                "(list its files under watch = [...])"
            )
    if start is not None:
        _scan(start.resolve(), root, found, {} if imports is None else imports)
    for pattern in entry.watch:
        matched = [p for p in root.glob(pattern) if p.is_file()]
        if not matched:
            notes.append(f"watch pattern {pattern!r} matches no file")
        found.update(matched)
    rel = sorted({p.resolve().relative_to(root).as_posix() for p in found if _inside(p, root)})
    if len(rel) > MANY_FILES:
        notes.append(
            f"model '{entry.name}' depends on {len(rel)} project files (all tracked; the first check "
            "hashes them all, later ones only stat them)"
        )
    return SourceFiles(tuple(rel), tuple(notes))


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except ValueError:
        return False


def _scan(start: Path, root: Path, found: set[Path], imports: dict[str, list]) -> None:
    """Add ``start`` and the project-local modules it imports, transitively."""
    todo = [start]
    while todo:
        path = todo.pop()
        if path in found or not path.is_file() or not _inside(path, root):
            continue
        found.add(path)
        for level, module in _imports_of(path, root, imports):
            target = _resolve_module(module, _bases(path, root, level))
            if target is None:
                continue
            todo.append(target)
            init = target.parent / "__init__.py"
            if target.name != "__init__.py" and init.is_file():
                todo.append(init)


def _imports_of(path: Path, root: Path, imports: dict[str, list]) -> list[tuple[int, str]]:
    """``(level, dotted module)`` of each module ``path`` may import; parsed only when the file's
    size or mtime changed since ``imports`` recorded it."""
    rel = path.relative_to(root).as_posix()
    try:
        st = os.stat(path)
    except OSError:
        return []
    old = imports.get(rel)
    if isinstance(old, list) and len(old) == 3 and old[0] == st.st_size and old[1] == st.st_mtime_ns:
        return [(int(level), str(module)) for level, module in old[2]]
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (SyntaxError, ValueError, OSError):
        return []  # the check itself reports the broken file
    found = [pair for node in ast.walk(tree) for pair in _imported(node)]
    imports[rel] = [st.st_size, st.st_mtime_ns, [list(p) for p in found]]
    return found


def _bases(path: Path, root: Path, level: int) -> list[Path]:
    """The folders an import of ``level`` in ``path`` looks in."""
    if not level:
        return [path.parent, root, root / "src"]
    base = path.parent  # relative: from the importing file's package, ``level - 1`` folders up
    for _ in range(level - 1):
        base = base.parent
    return [base]


def _imported(node: ast.AST) -> list[tuple[int, str]]:
    """(relative level, dotted module name) for each module an import statement may load."""
    if isinstance(node, ast.Import):
        return [(0, a.name) for a in node.names]
    if isinstance(node, ast.ImportFrom):
        mod = node.module or ""
        names = [mod] if mod else []
        names += [f"{mod}.{a.name}" if mod else a.name for a in node.names if a.name != "*"]
        return [(node.level or 0, n) for n in names]
    return []


def _resolve_module(module: str, bases: list[Path]) -> Path | None:
    """``a.b`` -> ``base/a/b.py`` or ``base/a/b/__init__.py`` for the first base that has it."""
    parts = [p for p in module.split(".") if p]
    if not parts:
        return None
    for base in bases:
        target = base.joinpath(*parts)
        for candidate in (target.with_suffix(".py"), target / "__init__.py"):
            if candidate.is_file():
                return candidate.resolve()
    return None
