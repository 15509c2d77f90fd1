"""Report sections: each is a typed value every backend lays out; a throwaway section is one module's worth
of code plus one registration line and shows up in Markdown and HTML alike."""

from __future__ import annotations

import dataclasses

import pytest

from onnxbridge.report import to_html, to_markdown, write_report
from onnxbridge.report.registry import SECTIONS
from onnxbridge.report.section import (
    Bullets,
    ReportSection,
    ReportSections,
    Section,
    Table,
    Text,
)

from .parity.report_cases import failing_report


def _provenance(report) -> Section | None:
    """A throwaway section: who asked for the run (here: the report's notes that name a ticket)."""
    tickets = tuple(n for n in report.notes if n.startswith("ticket "))
    if not tickets:
        return None
    return Section(
        "Provenance",
        (
            Text("tickets <linked> | checked"),
            Bullets(tickets),
            Table(("ticket", "status"), tuple((t, "open") for t in tickets), (True,) * len(tickets)),
        ),
    )


def test_a_throwaway_section_appears_in_markdown_and_html(tmp_path):
    sections = SECTIONS.with_section(ReportSection("provenance", _provenance))  # the one registration line
    assert sections.names()[-1] == "provenance" and "provenance" not in SECTIONS.names()
    report = dataclasses.replace(failing_report(tmp_path), notes=("ticket ABC-1",))
    md = to_markdown(report, sections)
    assert "## Provenance" in md and "- ticket ABC-1" in md and "| ticket ABC-1 | open |" in md
    assert "tickets <linked> \\| checked" not in md  # a Text block is a paragraph, not a table cell
    assert "tickets <linked> | checked" in md
    page = to_html(report, sections)
    assert "<h2>Provenance</h2>" in page and "<li>ticket ABC-1</li>" in page
    assert "tickets &lt;linked&gt; | checked" in page and "<tr class='fail'><td>ticket ABC-1</td>" in page
    assert write_report(report, tmp_path / "r.html", sections).read_text() == page
    # the default registry does not have it, and a report without tickets has no such section
    assert "Provenance" not in to_markdown(report)
    plain = dataclasses.replace(report, notes=())
    assert "Provenance" not in to_markdown(plain, sections) and "Provenance" not in to_html(plain, sections)


def test_a_section_name_is_registered_once_and_needs_a_layout():
    with pytest.raises(ValueError, match="registered twice"):
        ReportSections([ReportSection("x", _provenance), ReportSection("x", _provenance)])
    with pytest.raises(ValueError, match="needs build"):
        ReportSection("y", markdown=lambda r, c: [])
    with pytest.raises(ValueError, match="2 header"):
        Table(("a", "b"), (("only one",),))


def test_every_backend_lays_out_the_same_sections_in_the_same_order(tmp_path):
    report = dataclasses.replace(failing_report(tmp_path), notes=("a note",), timings={"validate_s": 1.5})
    md, page = to_markdown(report), to_html(report)
    assert md.index("## Validation") < md.index("## Notes") < md.index("## Timings")
    assert page.index("<h2>Validation</h2>") < page.index("<h2>Notes</h2>") < page.index("<h2>Timings</h2>")
    assert "validate_s 1.50 s" in md and "validate_s 1.50 s" in page
