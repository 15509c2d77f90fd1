"""A plain table of text cells: what a report section or a variant kind hands the renderers to lay out."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Table"]


@dataclass(frozen=True)
class Table:
    """Headers and rows of plain text (the renderers escape it); ``failed`` marks rows to highlight."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    failed: tuple[bool, ...] = ()

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.headers):
                raise ValueError(f"a row of {len(row)} cell(s) under {len(self.headers)} header(s): {row!r}")
