"""``debug FOLDER OUT_DIR``: a failed generation parity prints the debug command; that command replays the
prompts step by step through the graph and the source with its cache and names the first (step, layer,
key | value) that diverges, with where in the tensor; a correct folder raises no alarm."""

from __future__ import annotations

import json
import shlex

import numpy as np

from tests.generation.test_with_past import _shift_present, converted
from tests.test_report_schema import check


def test_a_shifted_present_value_is_named_layer_1_value(lm_folders, tmp_path_factory, tmp_path, run_cli):
    out, _ = converted(lm_folders, tmp_path_factory, "llama")
    bad = tmp_path / "bad"
    _shift_present(out, bad, layer=1)
    res = run_cli("validate", lm_folders["llama"], bad, "--report", tmp_path / "v.json")
    assert res.code == 1, res.out + res.err
    command = shlex.join(["onnxbridge", "debug", str(lm_folders["llama"]), str(bad)])
    assert f"to see which layer's cache diverges first: {command}" in res.out  # on one line, never wrapped
    verdict = json.loads((tmp_path / "v.json").read_text())["generation"]
    assert verdict["debug_command"] == command and verdict["rows"][0]["step"] == 1

    res = run_cli(*shlex.split(command)[1:], "--report", tmp_path / "d.json", "--report", tmp_path / "d.md")
    assert res.code == 1, res.out + res.err
    report = json.loads((tmp_path / "d.json").read_text())
    check("report.schema.json", report)
    first = report["cache_divergence"]["first"]
    # the prefill already writes the shifted value into the cache (its own attention used the right one)
    assert (first["step"], first["layer"], first["tensor"], first["name"]) == (0, 1, "value", "present.1.value")
    assert first["max_abs"] > first["tolerance"] and report["passed"] is False
    at_first = {c["name"]: c for c in report["cache_divergence"]["at_first"]}
    assert at_first["present.0.key"]["passed"] and at_first["present.0.value"]["passed"]
    assert at_first["present.1.key"]["passed"] and at_first["logits"]["passed"]  # only the value is off
    assert 0 <= first["head"] < 2 and 0 <= first["token"] <= first["position"] < 12
    assert "first divergence: layer 1 value, step 0: present.1.value" in " ".join(res.out.split())
    md = (tmp_path / "d.md").read_text()
    assert "KV cache" in md and "| 0 | present.1.value |" in md and "DIVERGES" in md


def test_a_correct_folder_raises_no_alarm(lm_folders, tmp_path_factory, run_cli):
    out, _ = converted(lm_folders, tmp_path_factory, "mistral")  # a sliding window the replay crosses
    res = run_cli("debug", lm_folders["mistral"], out, "--new-tokens", "10", "--json")
    assert res.code == 0, res.err
    report = json.loads(res.out)
    d = report["cache_divergence"]
    assert report["passed"] is True and d["first"] is None and d["summary"].startswith("nothing diverges")
    assert len(d["steps"]) == 10 and len(d["at_first"]) == 2 * 2 + 1
    assert all(c["max_abs"] < 1e-4 for c in d["steps"])
    assert len(d["tokens"][0]) == 10 and len(d["prompts"]) == 3


def test_masked_positions_are_left_out_and_the_place_is_named():
    from onnxbridge.generation.cache_debug import compare_tensor

    mask = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]], np.int64)  # row 0 left-padded by 2
    ref = np.random.default_rng(0).standard_normal((2, 3, 5, 4)).astype(np.float32)
    got = ref.copy()
    got[0, 1, 1, 2] += 50.0  # a padded position: whatever the graph computes there is never attended
    assert compare_tensor(0, "present.0.key", ref, got, mask, 1e-3, (2, 0)).passed
    got[0, 2, 3, 0] += 0.5  # row 0, head 2, position 3 = the row's second real token
    c = compare_tensor(4, "present.3.value", ref, got, mask, 1e-3, (2, 0))
    assert not c.passed and (c.layer, c.tensor, c.row, c.head, c.position, c.token) == (3, "value", 0, 2, 3, 1)
    logits = np.zeros((2, 1, 7), np.float32)
    moved = logits.copy()
    moved[1, 0, 6] = 1.0
    c = compare_tensor(2, "logits", logits, moved, mask, 1e-3, (2, 0))
    assert not c.passed and (c.layer, c.head, c.row, c.position) == (None, None, 1, 4)


def _scale_present(src, dst, name: str, factor: float) -> None:
    """A copy of the folder whose output ``name`` is multiplied by ``factor`` (inside, the graph is as it was)."""
    import shutil

    import onnx
    from onnx import helper

    shutil.copytree(src, dst)
    model = onnx.load(str(dst / "model.onnx"))
    for node in model.graph.node:
        node.output[:] = [f"{name}_raw" if o == name else o for o in node.output]
        node.input[:] = [f"{name}_raw" if i == name else i for i in node.input]
    model.graph.initializer.append(helper.make_tensor("factor", onnx.TensorProto.FLOAT, [], [factor]))
    model.graph.node.append(helper.make_node("Mul", [f"{name}_raw", "factor"], [name]))
    onnx.save(model, str(dst / "model.onnx"))


def test_a_scaled_layer_0_key_is_named_layer_0_key(lm_folders, tmp_path_factory, tmp_path):
    import onnxbridge

    out, _ = converted(lm_folders, tmp_path_factory, "llama")
    _scale_present(out, tmp_path / "scaled", "present.0.key", 1.05)
    d = onnxbridge.debug(lm_folders["llama"], [tmp_path / "scaled"], new_tokens=6).cache_divergence
    assert d is not None and d.first is not None and not d.passed
    assert (d.first.step, d.first.layer, d.first.tensor) == (0, 0, "key") and d.first.head is not None
    assert [c.name for c in d.at_first if not c.passed][0] == "present.0.key"
