"""The HTML report links to the overlay files and pictures the first divergence's neighbourhood."""

from __future__ import annotations

import re

import onnx

from onnxbridge.cli import main
from onnxbridge.overlays.kinds import FIRST
from onnxbridge.overlays.neighbourhood import neighbourhood


def test_html_report_links_the_overlays_and_pictures_the_first_divergence(chain_models, tmp_path, capsys):
    page = tmp_path / "where.html"
    assert main(["debug", str(chain_models["good"]), str(chain_models["bad"]), "--report", str(page)]) == 1
    html = page.read_text()
    links = re.findall(r"<a href='([^']+)'>", html)
    assert "where.overlay-divergence.json" in links and "where.overlay-placement.json" in links
    assert all((tmp_path / name).is_file() for name in links if name.startswith("where.overlay-"))
    assert f"onnxbridge view {chain_models['bad'].resolve()} --report where.html" in html
    svg = re.search(r"<svg[^>]*class='neighbourhood'.*?</svg>", html, re.DOTALL).group(0)
    # the failing node, filled as the first divergence, with a thick border
    assert re.search(rf"<title>mm5 · [0-9.]+</title><rect [^>]*fill='{FIRST}' stroke='#000' stroke-width='2.5'", svg)
    # one level up: the scaled weight and the residual Add; two levels up: what feeds that Add
    for name in ("W5", "res4", "scale4", "res3"):
        assert f">{name}<" in svg or f"<title>{name}" in svg, name
    assert "mm4" not in svg  # three levels up: left out


def test_no_picture_when_nothing_diverges(chain_models, tmp_path, capsys):
    page = tmp_path / "where.html"
    assert main(["debug", str(chain_models["good"]), str(chain_models["same"]), "--report", str(page)]) == 0
    assert "class='neighbourhood'" not in page.read_text()


def test_neighbourhood_rows_go_two_levels_up(chain_models):
    nb = neighbourhood(onnx.load(str(chain_models["bad"])), ["mm5"])
    keys = [[b.key for b in row] for row in nb.rows]
    assert keys == [["mm5"], ["res4", "weight:W5"], ["scale4", "res3"]]
    assert ("weight:W5", "mm5") in nb.edges and ("res3", "res4") in nb.edges
    assert neighbourhood(onnx.load(str(chain_models["bad"])), ["no-such-node"]) is None
