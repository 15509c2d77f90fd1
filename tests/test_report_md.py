"""The Markdown report (for pull-request comments) lists every case, output and tolerance."""

from __future__ import annotations

from onnxbridge.report import to_markdown

from .parity.report_cases import failing_report, passing_report_with_fallback


def test_markdown_lists_every_case_and_output_with_the_failing_index(tmp_path):
    report = failing_report(tmp_path)
    md = to_markdown(report)
    assert md.startswith("# onnxbridge validate: ✗ FAIL")
    rows = [line for line in md.splitlines() if line.startswith("| seed=")]
    assert len(rows) == 6  # 3 cases x 2 outputs
    assert sum("✗ FAIL 1 off, worst at [1, 5]" in r for r in rows) == 3
    assert sum("✓ pass" in r for r in rows) == 3
    assert "| y | float32 | 0.0001 | 0.001 | float32 default |" in md
    assert "**placement**: " in md and "CPU" in md
    path = report.write(tmp_path / "r.md")
    assert path.read_text() == md


def test_markdown_lists_fallback_nodes(tmp_path):
    md = to_markdown(passing_report_with_fallback(tmp_path))
    assert "2 node(s) fell back from CUDAExecutionProvider (ops: MatMul, Relu)" in md
    assert "| relu | Relu | CPUExecutionProvider |" in md and "| mm2 | MatMul | CPUExecutionProvider |" in md
