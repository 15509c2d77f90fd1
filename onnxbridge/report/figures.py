"""matplotlib figures for the reports, without pyplot (no global state), as inline SVG or image files."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

__all__ = ["figure", "svg", "save"]


def figure(width: float, height: float) -> Any:
    """A matplotlib Figure, or None when matplotlib is absent."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def svg(fig: Any, salt: str) -> str:
    """The figure as inline SVG, text kept as text, ids salted so several plots share one page."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


def save(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Write the figure as an image (the format follows the suffix: .png, .svg, .pdf), atomically."""
    from ..fsutil import atomic_path

    path = Path(path)
    with atomic_path(path, suffix=path.suffix) as tmp:
        fig.savefig(tmp, dpi=dpi, metadata={"Software": None} if path.suffix.lower() == ".png" else None)
    return path
