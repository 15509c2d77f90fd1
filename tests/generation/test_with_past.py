"""With-past export of causal-LM folders: optimum's layout and names, generation parity in the report, and
an independent greedy KV-cache loop (plain onnxruntime, written here) that reproduces ``generate()``'s
tokens for a left-padded batch and for batch 1, at prompt lengths the validator does not use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import onnxbridge
from tests.generation.conftest import ARCHS
from tests.test_report_schema import check

NEW_TOKENS = 12  # prompts up to 9 tokens + 12 new cross the sliding windows (8) of mistral / gemma2 / gemma3
_converted: dict[str, tuple[Path, object]] = {}


def converted(lm_folders, tmp_path_factory, arch: str):
    """(output folder, report) of ``convert FOLDER -o OUT_DIR``, once per session."""
    if arch not in _converted:
        out = tmp_path_factory.mktemp("onnx") / arch
        _converted[arch] = out, onnxbridge.convert(lm_folders[arch], out, new_tokens=8)
    return _converted[arch]


def ort_greedy(path: Path, prompts: list[list[int]], new: int, pad: int = 0) -> np.ndarray:
    """A greedy loop of its own over model.onnx: left padding, mask and positions as transformers builds them."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
    inputs = {i.name: i for i in sess.get_inputs()}
    width = max(map(len, prompts))
    ids = np.array([[pad] * (width - len(p)) + p for p in prompts], dtype=np.int64)
    mask = (np.arange(width)[None, :] >= width - np.array([len(p) for p in prompts])[:, None]).astype(np.int64)
    pos = np.clip(np.cumsum(mask, 1) - 1, 0, None) * mask
    past = {
        n: np.zeros((len(prompts), i.shape[1], 0, i.shape[3]), np.float32)
        for n, i in inputs.items()
        if n.startswith("past_key_values.")
    }
    out_names = [o.name for o in sess.get_outputs()]
    chosen = []
    for _ in range(new):
        feeds = {"input_ids": ids, "attention_mask": mask, **past}
        if "position_ids" in inputs:
            feeds["position_ids"] = pos
        outs = dict(zip(out_names, sess.run(None, feeds)))
        nxt = outs["logits"][:, -1].argmax(-1)
        chosen.append(nxt)
        past = {n: outs[n.replace("past_key_values.", "present.")] for n in past}
        ids, pos = nxt[:, None].astype(np.int64), pos[:, -1:] + 1
        mask = np.concatenate([mask, np.ones((len(prompts), 1), np.int64)], 1)
    return np.stack(chosen, 1)


def hf_greedy(source, prompts: list[list[int]], new: int, pad: int = 0) -> np.ndarray:
    """The source's own generate() (``source``: a folder, or the model itself): greedy, exactly ``new``
    tokens (no end-of-sequence stop), prompts left-padded."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    model = AutoModelForCausalLM.from_pretrained(source).eval() if isinstance(source, (str, Path)) else source
    model.generation_config = GenerationConfig(pad_token_id=pad)
    width = max(map(len, prompts))
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.no_grad():
        out = model.generate(
            input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=new, min_new_tokens=new
        )
    return out[:, width:].numpy()


PROMPTS = [[5, 17, 33, 8, 61], [40, 22, 9, 90, 14, 3, 77, 51, 12], [88, 6]]  # not the validator's lengths


@pytest.mark.parametrize("arch", ARCHS)
def test_with_past_export_reproduces_generate(arch, lm_folders, tmp_path_factory):
    out, report = converted(lm_folders, tmp_path_factory, arch)
    assert report.passed is True, report.generation.summary()
    assert all(r.verdict == "same" for r in (*report.generation.rows, *report.generation.batch_one))
    assert {"model.onnx", "config.json", "generation_config.json"} <= {p.name for p in out.iterdir()}
    d = report.to_dict()
    assert d["inputs"][:2] == ["input_ids", "attention_mask"] and "past_key_values.1.value" in d["inputs"]
    assert d["outputs"][0] == "logits" and d["outputs"][-1] == "present.1.value"
    assert d["generation"]["passed"] is True and d["generation"]["rows"][0]["steps"][0]["top2_gap"] > 0
    check("report.schema.json", d)
    want = hf_greedy(lm_folders[arch], PROMPTS, NEW_TOKENS)
    np.testing.assert_array_equal(ort_greedy(out, PROMPTS, NEW_TOKENS), want)
    np.testing.assert_array_equal(
        ort_greedy(out, PROMPTS[1:2], NEW_TOKENS), hf_greedy(lm_folders[arch], PROMPTS[1:2], NEW_TOKENS)
    )
    assert len({tuple(r) for r in want}) > 1  # the prompts lead to different text: the check can tell rows apart


def _shift_present(src: Path, dst: Path, layer: int) -> None:
    """A copy of the folder whose present.{layer}.value is shifted one position along the sequence."""
    import onnx
    from onnx import helper

    shutil.copytree(src, dst)
    graph = next(p for p in dst.iterdir() if p.suffix == ".onnx")
    model = onnx.load(str(graph))
    name = f"present.{layer}.value"
    for node in model.graph.node:  # inside the graph the value is as it was; only the output is shifted
        node.output[:] = [f"{name}_raw" if o == name else o for o in node.output]
        node.input[:] = [f"{name}_raw" if i == name else i for i in node.input]
    one, zero, big = (
        helper.make_tensor(n, onnx.TensorProto.INT64, [1], [v]) for n, v in (("k1", 1), ("k0", 0), ("kbig", 1 << 30))
    )
    model.graph.initializer.extend([one, zero, big])
    two = helper.make_tensor("k2", onnx.TensorProto.INT64, [1], [2])
    model.graph.initializer.append(two)
    model.graph.node.extend(
        [
            helper.make_node("Slice", [f"{name}_raw", "k0", "k1", "k2"], ["first"]),
            helper.make_node("Concat", ["first", f"{name}_raw"], ["doubled"], axis=2),
            helper.make_node("Shape", [f"{name}_raw"], ["shape"]),
            helper.make_node("Slice", ["doubled", "k0", "len", "k2"], [name]),
            helper.make_node("Gather", ["shape", "k2"], ["len"], axis=0),
        ]
    )
    onnx.save(_toposort(model), str(graph))


def _toposort(model):
    """The graph's nodes in an order where each input is produced before it is used."""
    graph = model.graph
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        for node in pending:
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
                pending.remove(node)
                break
        else:
            raise AssertionError("cycle")
    del graph.node[:]
    graph.node.extend(ordered)
    return model


def test_planted_kv_cache_bug_exits_1_naming_the_step(lm_folders, tmp_path_factory, tmp_path, run_cli):
    out, _ = converted(lm_folders, tmp_path_factory, "llama")
    _shift_present(out, tmp_path / "bad", layer=1)
    res = run_cli("validate", lm_folders["llama"], tmp_path / "bad", "--report", tmp_path / "r.json")
    assert res.code == 1, res.out + res.err
    text = " ".join(res.out.split())  # the terminal wraps long lines
    assert (
        "prompt 0 (7 tokens): diverges at step 1: onnx token" in text
    )  # prefill right; the first decode reads the cache
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["passed"] is False and report["generation"]["rows"][0]["step"] == 1
    check("report.schema.json", report)
    assert run_cli("validate", lm_folders["llama"], tmp_path / "bad", "--report", tmp_path / "r.md").code == 1
    assert "| 0 (7 tokens) | diverges | 1 |" in (tmp_path / "r.md").read_text()
    good = run_cli("validate", lm_folders["llama"], out)  # the untouched folder passes the same check
    assert good.code == 0, good.out + good.err


def test_generate_streams_text_and_matches_generate(lm_folders, tmp_path_factory, run_cli):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, _ = converted(lm_folders, tmp_path_factory, "llama")
    assert (out / "tokenizer.json").is_file()
    res = run_cli("generate", out, "--prompt", "w5 w17 w33 w8", "--max-new-tokens", "10")
    assert res.code == 0, res.err
    tok = AutoTokenizer.from_pretrained(lm_folders["llama"])
    model = AutoModelForCausalLM.from_pretrained(lm_folders["llama"]).eval()
    ids = tok("w5 w17 w33 w8", return_tensors="pt")
    with torch.no_grad():  # the folder's own generation config: stops at </s>
        want = model.generate(**ids, do_sample=False, max_new_tokens=10)[0, ids["input_ids"].shape[1] :].tolist()
    assert res.out.strip().splitlines()[0].strip() == tok.decode(want, skip_special_tokens=True)
    got = onnxbridge.generate(out, prompt_ids=[ids["input_ids"][0].tolist()], max_new_tokens=10)
    assert list(got.tokens[0]) == want and got.texts[0] == tok.decode(want, skip_special_tokens=True)


def test_sampling_is_seeded_and_top_k_1_is_greedy(lm_folders, tmp_path_factory):
    out, _ = converted(lm_folders, tmp_path_factory, "gpt2")
    prompt = [[5, 17, 33], [40, 22]]
    greedy = onnxbridge.generate(out, prompt_ids=prompt, max_new_tokens=8).tokens
    one = onnxbridge.generate(out, prompt_ids=prompt, max_new_tokens=8, sample=True, top_k=1, seed=3).tokens
    a = onnxbridge.generate(out, prompt_ids=prompt, max_new_tokens=8, sample=True, temperature=5.0, seed=7).tokens
    b = onnxbridge.generate(out, prompt_ids=prompt, max_new_tokens=8, sample=True, temperature=5.0, seed=7).tokens
    c = onnxbridge.generate(out, prompt_ids=prompt, max_new_tokens=8, sample=True, temperature=5.0, seed=8).tokens
    assert one == greedy and a == b and a != c and a != greedy


def test_usage_errors_exit_2(lm_folders, tmp_path_factory, tmp_path, run_cli):
    out, _ = converted(lm_folders, tmp_path_factory, "gpt2")
    res = run_cli("convert", lm_folders["gpt2"], "-o", tmp_path / "m.onnx", "--task", "text-generation-with-past")
    assert res.code == 2 and "writes a folder" in res.err
    assert run_cli("generate", out, "--prompt", "x", "--prompt-ids", "1").code == 2
    res = run_cli("generate", out, "--prompt", "hello")  # gpt2's folder has no tokenizer
    assert res.code == 2 and "no tokenizer" in res.err
    assert run_cli("generate", out, "--prompt-ids", "1,a").code == 2


def test_a_file_output_keeps_the_no_cache_graph(lm_folders, tmp_path):
    import onnx

    report = onnxbridge.convert(
        lm_folders["gpt2"], tmp_path / "m.onnx", validate=False, simplify=False, routes=["torchscript"]
    )
    names = [i.name for i in onnx.load(str(tmp_path / "m.onnx"), load_external_data=False).graph.input]
    assert names == ["input_ids", "attention_mask"] and report.generation is None


def test_a_near_tie_is_a_tie_and_a_clear_gap_fails():
    from onnxbridge.generation.loop import GenerationRun
    from onnxbridge.generation.parity import compare_runs

    ref = np.array([[0.0, 1.0, 1.0005, -2.0]], np.float32)  # source picks 2 by 5e-4
    ours = ref.copy()
    ours[0, 1] += 1e-3  # a numerical wobble under the tolerance flips the choice
    theirs = GenerationRun(((5,),), ((2,),), (ref,))
    tie = compare_runs(GenerationRun(((5,),), ((1,),), (ours,)), theirs, 2e-3, 2e-3)[0]
    assert tie.verdict == "tie" and tie.passed and tie.step == 0
    clear = np.array([[0.0, 1.0, 3.0, -2.0]], np.float32)
    wrong = clear.copy()
    wrong[0, 1] = 4.0
    bad = compare_runs(
        GenerationRun(((5,),), ((1,),), (wrong,)), GenerationRun(((5,),), ((2,),), (clear,)), 2e-3, 2e-3
    )[0]
    assert bad.verdict == "diverges" and not bad.passed and "onnx token 1 vs source 2" in bad.describe(0)


def test_a_route_whose_graph_breaks_the_cache_is_lost_with_the_reason(lm_folders, tmp_path, monkeypatch):
    """The route check runs each product against the wrapper at unused sizes: a graph whose present is
    shifted fails it, the route is lost with the output and size named, and with no route left: exit 3."""
    from onnxbridge.errors import ConversionError
    from onnxbridge.generation import export as gexport

    real = gexport._EXPORTERS["torchscript"]

    def broken(wrapper, args, layout, path, opset):
        real(wrapper, args, layout, path, opset)
        _shift_present(path.parent, tmp_path / "shifted", layer=0)
        shutil.copy(tmp_path / "shifted" / path.name, path)

    monkeypatch.setitem(gexport._EXPORTERS, "torchscript", broken)
    with pytest.raises(
        ConversionError, match=r"torchscript: prefill \(batch 3, seq 5, past 0\): present.0.value max_abs"
    ) as e:
        onnxbridge.convert(lm_folders["gpt2"], tmp_path / "out", routes=["torchscript"])
    assert e.value.exit_code == 3 and not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()
