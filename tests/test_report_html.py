"""The HTML report: one self-contained page, checked as text and rendered in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from onnxbridge.report import to_html

from .parity.report_cases import failing_report, passing_report_with_fallback

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)

# anything a browser would fetch: src/href to another host, CSS url() not pointing at a fragment, @import
_FETCH = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|url\(\s*["']?(?!#|data:)|@import""", re.I)


def test_html_is_self_contained_and_lists_everything(tmp_path):
    pytest.importorskip("matplotlib")
    page = to_html(failing_report(tmp_path))
    assert page.startswith("<!doctype html>")
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not _FETCH.search(page), _FETCH.search(page)
    assert "<script" not in page
    assert page.count("<svg") == 3  # histograms of y and z, and the placement plot
    for label in ("seed=0", "seed=1", "seed=2"):
        assert page.count(f"<td>{label}</td>") == 2
    assert page.count("[1, 5]") >= 3
    assert "Error histograms" in page and "Provider placement" in page and "Tolerances" in page
    assert "float32 default" in page


def test_html_lists_fallback_nodes(tmp_path):
    page = to_html(passing_report_with_fallback(tmp_path))
    assert "Nodes that fell back from CUDAExecutionProvider" in page
    assert "<td>relu</td><td>Relu</td><td>CPUExecutionProvider</td>" in page


def test_html_without_matplotlib_shows_the_counts_as_tables(tmp_path, monkeypatch):
    report = failing_report(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    page = to_html(report)
    assert "<svg" not in page
    assert "pip install 'onnxbridge[report]'" in page
    assert "<th>≤1e-2</th>" in page  # the histogram's bins as table columns


def _chromium(*args: str, tmp_path) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chrome-profile'}",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/test.sh installs it)")
def test_html_renders_in_headless_chromium(tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    page = failing_report(tmp_path).write(tmp_path / "report.html")
    dom = _chromium("--dump-dom", page.as_uri(), tmp_path=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert '<h1>onnxbridge validate <span class="badge bad">FAIL</span></h1>' in html
    assert html.count("<svg") == 3 and html.count('<tr class="fail">') == 3
    shot = tmp_path / "shot.png"
    r = _chromium("--window-size=1200,2400", f"--screenshot={shot}", page.as_uri(), tmp_path=tmp_path)
    assert r.returncode == 0 and shot.is_file(), r.stderr[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 2400)
    colors = img.getcolors(maxcolors=1 << 20)
    by_color = {rgb: n for n, rgb in colors}
    assert len(colors) > 50  # text, tables and plots, not a blank page
    assert by_color.get((0xC6, 0x28, 0x28), 0) > 200  # the red FAIL badge / red cells drew
    assert by_color.get((0x2E, 0x7D, 0x32), 0) > 200  # the histogram's green bars drew (inline SVG)
