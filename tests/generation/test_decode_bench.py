"""``onnxbridge bench OUT_DIR``: the decode bench over a with-past folder and its source, interleaved; every
side (ONNX Runtime with plain feeds, with IO binding of the cache, transformers with its cache) must decode
the same greedy tokens, so the figures time the same work. No timing assertions."""

from __future__ import annotations

import json

from tests.generation.test_with_past import converted
from tests.test_report_schema import check


def test_decode_bench_reports_every_side_and_the_same_tokens(lm_folders, tmp_path_factory, tmp_path, run_cli):
    out, _ = converted(lm_folders, tmp_path_factory, "llama")
    md, js = tmp_path / "b.md", tmp_path / "b.json"
    r = run_cli(
        "bench",
        out,
        "--source",
        lm_folders["llama"],
        "--prompt-length",
        9,
        "--new-tokens",
        6,
        "--batch",
        "1,3",
        "--trials",
        2,
        "--provider",
        "cpu",
        "--report",
        md,
        "--report",
        js,
    )
    assert r.code == 0, r.err
    d = check("report.schema.json", json.loads(js.read_text()))
    b = d["decode_bench"]
    assert (b["prompt_length"], b["new_tokens"], b["batches"]) == (9, 6, [1, 3])
    sides = {(row["runtime"], row["mode"], row["batch"]) for row in b["rows"]}
    assert sides == {
        (rt, m, n)
        for n in (1, 3)
        for rt, m in (("onnxruntime", "feeds"), ("onnxruntime", "io-binding"), ("transformers", "dynamic-cache"))
    }
    assert all(
        row["trials"] == 2
        and len(row["prefill_ms_all"]) == 2
        and row["prefill_ms"] > 0
        and row["decode_tokens_per_s"] > 0
        and row["peak_rss_bytes"] > 0
        for row in b["rows"]
    )
    assert b["same_tokens"] == [True, True], b["notes"]
    assert all(x["decode_speedup"] > 0 and x["prefill_speedup"] > 0 for x in b["ratios"])
    text = md.read_text()
    assert "## Decode bench" in text and "io-binding" in text and "same on every side" in text


def test_decode_bench_flags_a_source_that_decodes_otherwise(lm_folders, tmp_path_factory):
    """The llama export against the qwen2 folder (same vocabulary, other weights): the bench still times
    both, and says the tokens differ instead of presenting the ratios as like for like."""
    import onnxbridge

    out, _ = converted(lm_folders, tmp_path_factory, "llama")
    rep = onnxbridge.bench(
        out,
        source=str(lm_folders["qwen2"]),
        prompt_length=7,
        new_tokens=8,
        trials=1,
        batches=[2],
        io_binding="on",
        providers=["cpu"],
    )
    b = rep.decode_bench
    assert [(r.runtime, r.mode) for r in b.rows] == [("onnxruntime", "io-binding"), ("transformers", "dynamic-cache")]
    assert b.same_tokens == (False,) and any("different greedy tokens" in n for n in rep.notes)


def test_decode_bench_bad_input_exits_2(lm_folders, tmp_path_factory, tmp_path, run_cli):
    out, _ = converted(lm_folders, tmp_path_factory, "llama")
    r = run_cli("bench", tmp_path, "--provider", "cpu")  # a folder without model.onnx
    assert r.code == 2 and "model.onnx" in r.err
    r = run_cli("bench", out, "--new-tokens", 1, "--provider", "cpu")
    assert r.code == 2 and "--new-tokens" in r.err
