"""Small checks the commands share."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from ..fsutil import check_output_path
from ..options import REPORT_SUFFIXES


def check_report_paths(reports, *inputs) -> None:
    """Refuse unknown report suffixes and unwritable report paths before any work starts."""
    for r in reports:
        if Path(r).suffix.lower() not in REPORT_SUFFIXES:
            raise UsageError(f"unknown report format {Path(r).suffix!r} for {r}", "use .json, .md or .html")
        check_output_path(r, *inputs, what="report")
