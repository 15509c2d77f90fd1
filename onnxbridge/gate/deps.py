"""The files a model's SOURCE depends on, found without importing anything.

For ``file.py:NAME`` (and a ``package.module:NAME`` that lives in the project) the Python file and
every project-local module it imports, followed transitively by reading the imports with ``ast``;
for a model file its bytes, for a SavedModel folder every file in it; plus the ``watch`` globs of
the entry. Modules outside the project (installed packages) are covered by the package versions
that go into the cache key, not by file hashes.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from .manifest import ModelEntry

__all__ = ["SourceFiles", "source_files"]

MAX_FILES = 2000


@dataclass(frozen=True)
class SourceFiles:
    """Project-relative POSIX paths of the files a model depends on, and anything left untracked."""

    files: tuple[str, ...]
    notes: tuple[str, ...] = ()


def source_files(entry: ModelEntry, root: Path) -> SourceFiles:
    """Every project file whose change means the model must be re-exported and re-validated."""
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
        _scan(start.resolve(), root, found)
    for pattern in entry.watch:
        matched = [p for p in root.glob(pattern) if p.is_file()]
        if not matched:
            notes.append(f"watch pattern {pattern!r} matches no file")
        found.update(matched)
    rel = sorted({p.resolve().relative_to(root).as_posix() for p in found if _inside(p, root)})
    return SourceFiles(tuple(rel[:MAX_FILES]), tuple(notes))


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except ValueError:
        return False


def _scan(start: Path, root: Path, found: set[Path]) -> None:
    """Add ``start`` and the project-local modules it imports, transitively."""
    todo = [start]
    while todo and len(found) < MAX_FILES:
        path = todo.pop()
        if path in found or not path.is_file() or not _inside(path, root):
            continue
        found.add(path)
        try:
            tree = ast.parse(path.read_bytes(), str(path))
        except (SyntaxError, ValueError, OSError):
            continue  # the check itself reports the broken file
        for node in ast.walk(tree):
            for bases, module in _imported(node, path, root):
                target = _resolve_module(module, bases)
                if target is None:
                    continue
                todo.append(target)
                init = target.parent / "__init__.py"
                if target.name != "__init__.py" and init.is_file():
                    todo.append(init)


def _imported(node: ast.AST, path: Path, root: Path) -> list[tuple[list[Path], str]]:
    """(folders to look in, dotted module name) for each module an import statement may load."""
    if isinstance(node, ast.Import):
        bases = [path.parent, root, root / "src"]
        return [(bases, a.name) for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:  # relative: from the importing file's package, ``level - 1`` folders up
            base = path.parent
            for _ in range(node.level - 1):
                base = base.parent
            bases = [base]
        else:
            bases = [path.parent, root, root / "src"]
        mod = node.module or ""
        names = [mod] if mod else []
        names += [f"{mod}.{a.name}" if mod else a.name for a in node.names if a.name != "*"]
        return [(bases, n) for n in names]
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
