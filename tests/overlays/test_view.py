"""``onnxbridge view``: exit 2 without the extra; with it, a loopback server that serves the viewer and
our overlays, and (in headless Chromium) the diverging node shown with its overlay value."""

from __future__ import annotations

import json
import shutil
import sys
import urllib.request
from urllib.parse import parse_qs, quote, urlparse

import pytest

from onnxbridge.cli import main

from .conftest import serve_view

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def test_view_without_the_extra_exits_2_with_the_pip_command(chain_models, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "model_explorer", None)
    assert main(["view", str(chain_models["bad"]), "--no-browser"]) == 2
    assert "pip install 'onnxbridge[view]'" in capsys.readouterr().err


def test_view_of_a_report_without_overlays_exits_2(chain_models, tmp_path, capsys):
    pytest.importorskip("model_explorer")
    (tmp_path / "r.json").write_text("{}")
    assert main(["view", str(chain_models["bad"]), "--report", str(tmp_path / "r.json"), "--no-browser"]) == 2
    assert "no overlays beside it" in capsys.readouterr().err


def test_view_serves_the_viewer_and_the_overlays_on_loopback(chain_models, where_report):
    pytest.importorskip("model_explorer")
    pytest.importorskip("model_explorer_onnx")
    with serve_view(chain_models["bad"], where_report) as served:
        u = urlparse(served.url)
        assert u.hostname == "127.0.0.1"
        data = json.loads(parse_qs(u.query)["data"][0])
        assert data["models"][0]["url"] == str(chain_models["bad"].resolve())
        assert data["uiState"]["paneStates"][0]["selectedNodeId"] == "mm5"  # the first divergence, selected
        assert data["nodeData"][-1].endswith("where.overlay-divergence.json")  # shown on the graph
        with OPENER.open(served.url, timeout=10) as r:
            assert r.status == 200 and "<app-root" in r.read().decode()
        # the viewer reads the overlay through its server, as the page will
        with OPENER.open(
            f"http://127.0.0.1:{served.port}/api/v1/read_text_file?path={quote(data['nodeData'][-1])}", timeout=10
        ) as r:
            assert "mm5" in json.loads(r.read())["content"]
        assert any("overlay divergence" in ln for ln in served.output)


# the info panel shows the selected node's id and its node-data rows
_SHOWS = "(t => t.includes('error / tolerance') && t.includes('\\n{node}\\n'))(document.body.innerText)"


def _panel(page) -> dict[str, str]:
    """The selected node's id and node-data rows, read from the viewer's info panel (the page's DOM)."""
    text = page.evaluate("document.body.innerText") or ""
    rows = [r.strip() for r in text.split("\n") if r.strip()]
    out = {}
    for key in ("id", "error / tolerance", "provider"):
        if key in rows and rows.index(key) + 1 < len(rows):
            out[key] = rows[rows.index(key) + 1]
    return out


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (scripts/test.sh installs it)")
def test_chromium_shows_the_overlay_value_on_the_diverging_node(chain_models, where_report, tmp_path):
    pytest.importorskip("model_explorer")
    pytest.importorskip("model_explorer_onnx")
    from .cdp import Chromium

    with serve_view(chain_models["bad"], where_report) as served:
        page = Chromium(CHROMIUM, tmp_path / "chrome-profile")
        try:
            page.goto(served.url)
            seen = page.wait_for(_SHOWS.format(node="mm5"), timeout=60)
            assert seen, f"the viewer showed no node data: {page.evaluate('document.body.innerText')!r:.1000}"
            panel = _panel(page)
            assert panel["id"] == "mm5"  # the node whose weight was scaled
            assert float(panel["error / tolerance"]) > 100  # a 1.5x weight is hundreds of tolerances off
            assert panel["provider"] == "CPUExecutionProvider"
            shot = page.screenshot(tmp_path / "overlay.png")
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
            # the other way: a node upstream of the planted weight carries a passing value
            page.goto(_select(served.url, "mm2"))
            assert page.wait_for(_SHOWS.format(node="mm2"), timeout=60)
            upstream = _panel(page)
            assert upstream["id"] == "mm2" and float(upstream["error / tolerance"]) < 1
        finally:
            page.close()


def _select(url: str, node: str) -> str:
    u = urlparse(url)
    data = json.loads(parse_qs(u.query)["data"][0])
    data["uiState"]["paneStates"][0]["selectedNodeId"] = node
    return u._replace(query="data=" + quote(json.dumps(data))).geturl()


def test_view_on_a_port_in_use_exits_2(chain_models, capsys):
    pytest.importorskip("model_explorer")
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["view", str(chain_models["bad"]), "--no-browser", "--port", str(port)]) == 2
    assert f"127.0.0.1:{port} is in use" in capsys.readouterr().err
    assert main(["view", str(chain_models["bad"].with_suffix(".txt")), "--no-browser"]) == 2
