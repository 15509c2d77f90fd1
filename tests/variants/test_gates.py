"""The variant gate on a model whose classes mean something: a good variant is written and runs, one over
its budget or too slow is refused (or written marked FAIL on request), one that cannot be produced leaves
the fp32 model alone, and calibration data that does not fit is exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from onnxbridge import api
from onnxbridge.results import VariantStatus
from tests.conftest import files_in
from tests.variants import models
from tests.variants.conftest import FAST, rerun


def _only(report):
    (v,) = report.variants.variants
    return v


def test_a_good_int8_variant_is_written_and_agrees_at_a_size_the_gate_did_not_use(classifier, classifier_files):
    report = api.variant(classifier, "int8", inputs_file=classifier_files / "clusters.npz", min_speedup=0, **FAST)
    v = _only(report)
    assert v.status is VariantStatus.PASSED, v.reasons
    assert v.path == str(classifier.parent / "classifier.int8.onnx")
    assert v.size_ratio < 0.5 and v.details["quantized_ops"]["MatMulInteger"] == 2
    assert report.variants.eval_cases == 4 and report.variants.calibration_cases == 4
    # the written file, straight on ONNX Runtime, at batch 7 (the gate used batch 4), against fp32 and the labels
    x, labels = models.cluster_inputs(7, seed=555)
    got, ref = rerun(v.path, x), rerun(classifier, x)
    assert got.shape == (7, 10)
    assert (got.argmax(1) == ref.argmax(1)).all() and (got.argmax(1) == labels).all()
    cos = (got * ref).sum() / np.linalg.norm(got) / np.linalg.norm(ref)
    assert cos > 0.999


def test_a_variant_over_its_budget_is_refused_and_not_written(classifier, classifier_files):
    report = api.variant(
        classifier,
        "int4",
        inputs_file=classifier_files / "clusters.npz",
        min_speedup=0,
        budget="cosine_min=0.99999",
        **FAST,
    )
    v = _only(report)
    assert v.status is VariantStatus.REFUSED and v.path is None
    assert "over the accuracy budget" in v.reasons[0] and "cosine_min" in v.reasons[0]
    assert files_in(classifier.parent) == {"classifier.onnx"}
    assert v.budget["cosine_min"] == 0.99999 and v.budget["cosine"] == 0.9  # the user's limit over the default


def test_a_slower_variant_is_refused_unless_forced_then_marked_fail(run_cli, classifier):
    """int8 on a 64-wide classifier can never be 100x faster than fp32: refused, exit 1, nothing written;
    with --write-failed it is written and the report says FAIL."""
    r = run_cli("variant", classifier, "--to", "int8", "--min-speedup", "100", "--runs", "3", "--rounds", "1", "--json")
    assert r.code == 1, r.err
    v = json.loads(r.out)["variants"]["variants"][0]
    assert v["status"] == "refused" and "slower than required" in v["reasons"][0] and "needs >= 100x" in v["reasons"][0]
    assert files_in(classifier.parent) == {"classifier.onnx"}
    r = run_cli(
        "variant",
        classifier,
        "--to",
        "int8",
        "--min-speedup",
        "100",
        "--write-failed",
        "--runs",
        "3",
        "--rounds",
        "1",
        "--report",
        classifier.parent / "r.md",
    )
    assert r.code == 1
    assert (classifier.parent / "classifier.int8.onnx").is_file()
    assert "✗ FAIL (written: --write-failed)" in (classifier.parent / "r.md").read_text()


def test_a_variant_that_cannot_be_produced_leaves_the_model_untouched(run_cli, classifier):
    """bf16 on CPU: ONNX Runtime has no bf16 MatMul / Add / Relu kernels."""
    before = classifier.read_bytes()
    r = run_cli("variant", classifier, "--to", "bf16", "--runs", "2", "--rounds", "1")
    assert r.code == 2, r.out + r.err
    assert "no bf16 kernel for" in r.out and "--provider cuda" in r.out
    assert classifier.read_bytes() == before and files_in(classifier.parent) == {"classifier.onnx"}


def test_an_fp16_model_that_cannot_meet_its_budget_is_unavailable(classifier):
    report = api.variant(classifier, "fp16", budget={"max_abs": 0.0}, min_speedup=0, **FAST)
    v = _only(report)
    assert v.status is VariantStatus.UNAVAILABLE and "no fp16 model within the budget" in v.reasons[0]
    assert files_in(classifier.parent) == {"classifier.onnx"}


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"input": np.zeros((4, 64), np.float32)}, "missing x; unknown input"),
        ({"x": np.zeros((4, 32), np.float32)}, "axis 1 is 32, the model fixes it at 64"),
        ({"x": np.zeros((64,), np.float32)}, "rank 1"),
        ({"x": np.zeros((4, 64), np.int64)}, "is int64, the model wants float32"),
    ],
)
def test_calibration_data_that_does_not_fit_is_exit_2(run_cli, classifier, bad, message):
    from onnxbridge.parity.fixtures import write_fixtures

    npz = write_fixtures(classifier.parent / "calib.npz", inputs=[("c0", bad)])
    r = run_cli("variant", classifier, "--to", "int8-static", "--inputs", npz)
    assert r.code == 2 and message in r.err and "calib.npz" in r.err, r.err
    assert files_in(classifier.parent) == {"classifier.onnx", "calib.npz"}


def test_int8_static_is_calibrated_on_the_even_cases_and_judged_on_the_odd_ones(classifier, classifier_files):
    report = api.variant(
        classifier,
        "int8-static",
        inputs_file=classifier_files / "clusters.npz",
        calibration_method="entropy",
        min_speedup=0,
        **FAST,
    )
    v = _only(report)
    assert v.status is VariantStatus.PASSED, v.reasons
    assert v.details["settings"]["calibration"] == "entropy" and v.details["settings"]["calibration_cases"] == 4
    assert v.details["quantized_ops"]["QuantizeLinear"] > 0
    assert "odd case(s) judge" in report.variants.inputs
    assert v.worst("top1") == 1.0 and v.worst("top1_decisive") == 1.0


def test_bad_flags_are_exit_2_before_any_work(run_cli, classifier):
    assert "unknown budget metric 'cosin'" in run_cli("variant", classifier, "--to", "int8", "--budget", "cosin=1").err
    assert run_cli("variant", classifier, "--to", "int9").code == 2
    r = run_cli("variant", classifier, "--to", "int8,fp16", "-o", classifier.parent / "x.onnx")
    assert r.code == 2 and "-o names one file" in r.err
    r = run_cli("variant", classifier, "--to", "int8", "-o", classifier)
    assert r.code == 2 and "never overwrites its input" in r.err
    assert files_in(classifier.parent) == {"classifier.onnx"}


def test_convert_builds_variants_judged_against_the_source(run_cli, tmp_path, classifier_files):
    """convert --variant: the PyTorch source is the reference, its eager model is timed beside the variants,
    and the JSON report (schema-checked) has the variants section."""
    from tests.test_report_schema import check

    out = tmp_path / "clf.onnx"
    r = run_cli(
        "convert",
        "tests.variants.models:classifier",
        "-o",
        out,
        "--input",
        "x:batch,64",
        "--inputs",
        classifier_files / "clusters.npz",
        "--variant",
        "int8,ort",
        "--min-speedup",
        "0",
        "--report",
        tmp_path / "r.json",
        "--report",
        tmp_path / "r.html",
    )
    assert r.code == 0, r.out + r.err
    d = check("report.schema.json", json.loads((tmp_path / "r.json").read_text()))
    var = d["variants"]
    assert var["reference"] == "pytorch" and var["eager_latency"]["p50"] > 0
    assert [v["status"] for v in var["variants"]] == ["passed", "passed"]
    assert var["variants"][0]["speedup_vs_eager"] > 0 and var["fp32_accuracy"][0]["top1"] == 1.0
    assert {p.name for p in tmp_path.iterdir()} >= {"clf.onnx", "clf.int8.onnx", "clf.ort"}
    assert "Variants" in (tmp_path / "r.html").read_text()
    # the int8 file against the source itself, at batch 5
    net, _ = models.classifier()
    import torch

    x, _ = models.cluster_inputs(5, seed=777)
    ref = net(torch.from_numpy(x)).detach().numpy()
    assert (rerun(tmp_path / "clf.int8.onnx", x).argmax(1) == ref.argmax(1)).all()


def test_a_variant_with_external_data_is_written_with_its_data(classifier, classifier_files, monkeypatch):
    """A variant over 2 GB is saved with its weights in ``NAME.onnx.data`` (forced here): the written file
    must come with its data, not point into the deleted build folder."""
    from onnxbridge.onnxio import external_files, load_onnx, save_onnx
    from onnxbridge.variants.kinds import fp16

    monkeypatch.setattr(fp16, "save", lambda model, path: save_onnx(model, path, external_data=True))
    report = api.variant(classifier, "fp16", inputs_file=classifier_files / "clusters.npz", min_speedup=0, **FAST)
    v = _only(report)
    assert v.status is VariantStatus.PASSED, v.reasons
    assert external_files(load_onnx(v.path)) == ["classifier.fp16.onnx.data"]
    assert files_in(classifier.parent) == {"classifier.onnx", "classifier.fp16.onnx", "classifier.fp16.onnx.data"}
    x, _ = models.cluster_inputs(5, seed=321)
    assert (rerun(v.path, x).argmax(1) == rerun(classifier, x).argmax(1)).all()


def test_the_build_folder_is_one_that_recover_clears_after_a_kill(classifier, classifier_files, monkeypatch):
    """Variants are built in a folder beside the target; a run killed meanwhile leaves it behind, so it
    must be named as onnxbridge's temp files are (the next run's ``recover`` removes it once stale)."""
    from onnxbridge.publish import PREFIX, _stale
    from onnxbridge.variants.kinds import fp16

    seen = []
    real = fp16.save
    monkeypatch.setattr(fp16, "save", lambda model, path: (seen.append(path.parent), real(model, path)))
    api.variant(classifier, "fp16", inputs_file=classifier_files / "clusters.npz", min_speedup=0, **FAST)
    (folder,) = seen
    assert folder.parent == classifier.parent and folder.name.startswith(PREFIX)
    folder.mkdir()
    assert not _stale(folder)  # this process is alive: kept
