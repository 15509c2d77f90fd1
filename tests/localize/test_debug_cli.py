"""debug's contract: bad input is exit 2 with nothing written; the report (JSON schema, Markdown, HTML)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from tests.conftest import files_in
from tests.test_report_schema import check

from .onnx_chain import chain


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pair")
    onnx.save(chain(), folder / "a.onnx")
    onnx.save(chain(scale={"b3": 1.5}), folder / "b.onnx")
    return folder


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("{a}", "--repro-dir", "{out}"), "alone has nothing to compare"),
        (("{a}", "{garbage}", "--repro-dir", "{out}"), "not a readable ONNX model"),
        (("{a}", "{b}", "--budget-mb", "0", "--repro-dir", "{out}"), "--budget-mb 0.0 must be a positive number"),
        (("{a}", "{b}", "--repro-dir", "{missing}", "--report", "{out}/r.md"), "is not a folder"),
        (("{a}", "{b}", "--report", "{out}/r.txt"), "unknown report format"),
    ],
)
def test_bad_input_is_exit_2_with_a_message_and_nothing_written(pair, tmp_path, run_cli, args, message):
    (tmp_path / "garbage.onnx").write_bytes(b"not onnx at all")
    out = tmp_path / "out"
    out.mkdir()
    values = dict(
        a=pair / "a.onnx", b=pair / "b.onnx", garbage=tmp_path / "garbage.onnx", missing=tmp_path / "no", out=out
    )
    r = run_cli("debug", *(a.format(**values) for a in args))
    assert r.code == 2, r.out + r.err
    assert message in r.err and "Traceback" not in r.err
    assert files_in(out) == set() and files_in(pair) == {"a.onnx", "b.onnx"}


def test_validate_localize_on_fixtures_says_it_needs_a_reference(pair, tmp_path, run_cli):
    run_cli(
        "validate",
        pair / "a.onnx",
        pair / "a.onnx",
        "--save-inputs",
        tmp_path / "in.npz",
        "--save-outputs",
        tmp_path / "out.npz",
    )
    r = run_cli(
        "validate",
        pair / "b.onnx",
        "--inputs",
        tmp_path / "in.npz",
        "--expected",
        tmp_path / "out.npz",
        "--localize",
        "--json",
    )
    assert r.code == 1
    d = json.loads(r.out)
    assert d.get("localization") is None and any("--localize needs a SOURCE" in n for n in d["notes"])


def test_debug_reports_match_the_schema_and_show_where_it_diverges(pair, tmp_path, run_cli):
    reports = [tmp_path / f"r.{s}" for s in ("json", "md", "html")]
    r = run_cli("debug", pair / "a.onnx", pair / "b.onnx", *(x for p in reports for x in ("--report", p)))
    assert r.code == 1
    d = check("report.schema.json", json.loads(reports[0].read_text()))
    assert d["command"] == "debug" and d["localization"]["first"]["name"] == "bias3"
    md = reports[1].read_text()
    assert "## Where it diverges" in md and "![error / tolerance per layer along the model](r.where.svg)" in md
    assert "onnxbridge debug" in md and "onnxbridge validate" in md  # the commands that reproduce it
    page = reports[2].read_text()
    assert "<h2 id='where'>Where it diverges</h2>" in page and page.count("<svg") >= 2
    assert "bias3" in page
    assert files_in(tmp_path) >= {"r.json", "r.md", "r.where.svg", "r.html", "b.repro.onnx", "b.repro.npz"}


def test_a_candidate_that_cannot_run_the_failing_case_gets_the_stage_table_and_a_note(tmp_path, run_cli):
    from tests.parity import onnx_models

    onnx_models.save(onnx_models.flatten_rows(), tmp_path / "good.onnx")
    onnx_models.save(onnx_models.flatten_rows(fixed_batch=2), tmp_path / "baked.onnx")
    r = run_cli("debug", tmp_path / "good.onnx", tmp_path / "baked.onnx", "--json")
    assert r.code == 1, r.err
    loc = json.loads(r.out)["localization"]
    assert loc["case"] == "batch=1" and loc["broken_stage"] == "baked" and loc["first"] is None
    assert loc["stages"][0]["error"] and any("cannot run this case" in n for n in loc["notes"])


@pytest.mark.route("torch.export/dynamo")
def test_a_source_that_does_not_repeat_is_not_judged_nor_localised(tmp_path, run_cli):
    """The validation's self-check runs the reference twice (the stage table's memory of its outputs must not
    answer it); a random op is noise, not a place where the model diverges."""
    noisy = Path(__file__).resolve().parent.parent / "models" / "torch_models.py"
    r = run_cli("debug", f"{noisy}:noisy", "--input", "x:batch,8", "--json")
    assert r.code == 1, r.err
    d = json.loads(r.out)
    assert d["validation"]["source_repeats"] is False
    assert "aten.randn_like.default at torch_models.py:" in d["validation"]["nondeterminism"]
    assert d.get("localization") is None
    assert any(n.startswith("not localised: the source does not repeat itself") for n in d["notes"])
    check("report.schema.json", d)
    # nor does a failed convert of it point at `debug`: there is only noise to follow
    r = run_cli("convert", f"{noisy}:noisy", "-o", tmp_path / "noisy.onnx", "--input", "x:batch,8", "--json")
    assert r.code == 1 and not [n for n in json.loads(r.out)["notes"] if "onnxbridge debug" in n]
