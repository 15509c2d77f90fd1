"""What ``onnxbridge frameworks`` lists: every registered converter, built-in or plugin."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["FrameworkListing"]


@dataclass(frozen=True)
class FrameworkListing:
    """One framework of the converter registry: where it comes from, the SOURCE forms it reads, its
    routes, and the packages whose versions matter to its exports (the installed version, or None)."""

    name: str
    origin: str
    suffixes: tuple[str, ...] = ()
    dir_markers: tuple[str, ...] = ()
    type_modules: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()
    packages: dict[str, str | None] = field(default_factory=dict)
    error: str | None = None  # the converter class could not be loaded

    @property
    def forms(self) -> tuple[str, ...]:
        """The SOURCE forms, as a user would write them."""
        out = [f"*{s}" for s in self.suffixes] + [f"a folder with {m}" for m in self.dir_markers]
        if self.type_modules:
            out.append(f"file.py:NAME giving a {'/'.join(self.type_modules)} object")
        return tuple(out)
