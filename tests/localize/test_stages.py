"""Stage bisection: the first step of the chain that breaks parity is named, then localised inside."""

from __future__ import annotations

import onnx

from onnxbridge import api
from onnxbridge.transforms.simplify import run_onnxsim

from .conftest import scale_module_weight, src
from .onnx_chain import chain, to_fp16
from .torch_net import line_of


def test_a_simplify_step_that_breaks_parity_is_named_as_the_stage(exports, tmp_path):
    exported = onnx.load(str(exports["clean"]))
    simplified = run_onnxsim(exported)  # node metadata carried through onnxsim
    scale_module_weight(simplified, "blocks.3.fc", 1.05)  # a "simplifier bug"
    onnx.save(exported, tmp_path / "exported.onnx")
    onnx.save(simplified, tmp_path / "simplified.onnx")
    onnx.save(to_fp16(simplified), tmp_path / "fp16.onnx")
    report = api.debug(
        src("clean"), [tmp_path / f"{n}.onnx" for n in ("exported", "simplified", "fp16")], inputs=["x:batch,16"]
    )
    loc = report.localization
    assert [s.stage for s in loc.stages] == ["exported", "simplified", "fp16"]
    assert [s.passed for s in loc.stages[:2]] == [True, False]
    assert loc.stages[1].step_passed is False  # the step itself moved the numbers, not drift
    assert loc.broken_stage == "simplified" and loc.direction == "onnx"
    assert (loc.reference, loc.candidate) == ("exported", "simplified")
    first = loc.first
    assert first.module == "blocks.3.fc" and first.class_name in ("MatMul", "Gemm")
    assert first.call_site is not None and first.call_site.line == line_of("BLOCK LINE")


def test_an_fp16_step_that_overflows_is_named_as_the_stage(tmp_path, run_cli):
    big = chain(scale={"W7": 1e5})  # finite in float32, beyond float16's range
    onnx.save(big, tmp_path / "a.onnx")
    onnx.save(run_onnxsim(big), tmp_path / "simplified.onnx")
    onnx.save(to_fp16(big), tmp_path / "fp16.onnx")
    r = run_cli(
        "debug",
        tmp_path / "a.onnx",
        tmp_path / "simplified.onnx",
        tmp_path / "fp16.onnx",
        "--report",
        tmp_path / "where.md",
    )
    assert r.code == 1
    text = (tmp_path / "where.md").read_text()
    assert "stage **`fp16`** is the first to break parity" in text
    assert "| simplified |" in text and "✓ pass" in text
    assert "**first diverging node**: `mm7` [MatMul]" in text
    assert "<svg" in (tmp_path / "where.where.svg").read_text()
    assert (tmp_path / "fp16.repro.onnx").is_file()  # beside the report
