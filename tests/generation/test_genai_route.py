"""``--route genai``: ONNX Runtime GenAI's model builder as a with-past route, judged on generation parity.
A greedy loop of the test's own (plain onnxruntime, rows packed at the start as GroupQueryAttention reads
them) reproduces ``generate()``'s tokens over the written model.onnx; an architecture the builder does not
know is a lost route; a planted cache bug in the GenAI graph fails generation parity; no extra, no route."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import onnxbridge
from onnxbridge.errors import ConversionError
from onnxbridge.generation.loop import DecoderSession
from tests.generation.conftest import SPECIAL, VOCAB, _tokenizer
from tests.generation.test_with_past import PROMPTS, hf_greedy
from tests.test_report_schema import check

pytest.importorskip("onnxruntime_genai")
pytestmark = pytest.mark.route("genai")

NEW_TOKENS = 12
# GroupQueryAttention on CPU needs head_size % 16 == 0: hidden 32 over 2 heads
_SMALL = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "vocab_size": VOCAB,
    "max_position_embeddings": 128,
    "initializer_range": 0.2,
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """llama, qwen2 (grouped-query, head_dim 16) and gpt2 (not a GenAI architecture), with a tokenizer."""
    import torch
    import transformers as tf

    configs = {
        "llama": tf.LlamaConfig(**_SMALL, tie_word_embeddings=True),
        "qwen2": tf.Qwen2Config(**_SMALL),
        "gpt2": tf.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=VOCAB, n_positions=128),
    }
    root = tmp_path_factory.mktemp("genai_lms")
    for arch, cfg in configs.items():
        for k, v in SPECIAL.items():
            setattr(cfg, k, v)
        with torch.random.fork_rng():
            torch.manual_seed(1)
            model = tf.AutoModelForCausalLM.from_config(cfg)
        model.generation_config = tf.GenerationConfig(**SPECIAL)
        model.save_pretrained(root / arch)
        _tokenizer(root / arch)
    return {a: root / a for a in configs}


_built: dict[str, tuple[Path, object]] = {}


def built(folders, tmp_path_factory, arch: str):
    """(output folder, report) of ``convert FOLDER -o OUT_DIR --route genai``, once per module."""
    if arch not in _built:
        out = tmp_path_factory.mktemp("genai_out") / arch
        _built[arch] = out, onnxbridge.convert(folders[arch], out, routes=["genai"], new_tokens=8)
    return _built[arch]


def packed_greedy(path: Path, prompts: list[list[int]], new: int, pad: int = 0) -> np.ndarray:
    """A greedy loop of its own over a GenAI model.onnx: each row's tokens at the start (right padding),
    the mask's sum its length, the next token read at each row's last real position."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
    head = json.loads((path / "genai_config.json").read_text())["model"]["decoder"]["head_size"]
    width, lengths = max(map(len, prompts)), np.array([len(p) for p in prompts])
    ids = np.array([p + [pad] * (width - len(p)) for p in prompts], dtype=np.int64)
    mask = (np.arange(width)[None, :] < lengths[:, None]).astype(np.int64)
    past = {
        i.name: np.zeros((len(prompts), i.shape[1], 0, head), np.float32)
        for i in sess.get_inputs()
        if i.name.startswith("past_key_values.")
    }
    names = [o.name for o in sess.get_outputs()]
    at, chosen = lengths - 1, []
    for _ in range(new):
        outs = dict(zip(names, sess.run(None, {"input_ids": ids, "attention_mask": mask, **past})))
        nxt = outs["logits"][np.arange(len(prompts)), at].argmax(-1)
        chosen.append(nxt)
        past = {n: outs[n.replace("past_key_values.", "present.")] for n in past}
        ids, at = nxt[:, None].astype(np.int64), np.zeros(len(prompts), dtype=np.int64)
        mask = np.concatenate([mask, np.ones((len(prompts), 1), np.int64)], 1)
    return np.stack(chosen, 1)


@pytest.mark.parametrize("arch", ["llama", pytest.param("qwen2", marks=pytest.mark.slow)])  # ~20 s each
def test_genai_route_reproduces_generate(folders, tmp_path_factory, arch):
    out, report = built(folders, tmp_path_factory, arch)
    assert report.passed and report.conversion.route == "genai", report.conversion.attempts
    assert report.generation.passed and report.generation.max_logits_abs < 1e-3
    assert {"model.onnx", "genai_config.json", "config.json", "tokenizer.json"} <= {f.name for f in out.iterdir()}
    assert not any(f.name.startswith(".") for f in out.parent.iterdir())  # no scratch left
    assert "GroupQueryAttention" in " ".join(report.conversion.notes)
    for prompts in (PROMPTS, PROMPTS[1:2]):  # lengths the validator did not use; batch 3, then batch 1
        want = hf_greedy(folders[arch], prompts, NEW_TOKENS)
        np.testing.assert_array_equal(packed_greedy(out, prompts, NEW_TOKENS), want)
    # onnxbridge's own loop (the validator's and generate's) packs the rows as the graph's layout says
    session = DecoderSession(out)
    assert session.layout.padding == "right" and not session.layout.position_ids
    got = session.generate(PROMPTS, NEW_TOKENS)
    np.testing.assert_array_equal(np.array(got.tokens), hf_greedy(folders[arch], PROMPTS, NEW_TOKENS))


def test_unsupported_architecture_is_a_lost_route(folders, tmp_path, run_cli):
    res = run_cli("convert", folders["gpt2"], "-o", tmp_path / "out", "--route", "genai")
    assert res.code == 3, res.out + res.err
    text = " ".join(res.err.split())
    assert "genai: the GenAI model builder does not support GPT2LMHeadModel (model_type 'gpt2')" in text
    assert not (tmp_path / "out").exists() and not any(tmp_path.iterdir())  # nothing partial left


def test_planted_cache_bug_fails_generation_parity(folders, tmp_path_factory, tmp_path, run_cli):
    import onnx

    out, _ = built(folders, tmp_path_factory, "llama")
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    model = onnx.load(str(bad / "model.onnx"))
    attn = next(n for n in model.graph.node if n.op_type == "GroupQueryAttention" and "present.1.value" in n.output)
    attn.output[list(attn.output).index("present.1.value")] = "present.1.value.right"
    model.graph.node.append(onnx.helper.make_node("Mul", ["present.1.value.right", "half"], ["present.1.value"]))
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array(0.5, np.float32), "half"))
    onnx.save(model, str(bad / "model.onnx"))
    res = run_cli("validate", folders["llama"], bad, "--report", tmp_path / "r.json")
    assert res.code == 1, res.out + res.err
    rows = json.loads((tmp_path / "r.json").read_text())["generation"]["rows"]
    assert rows[0]["verdict"] == "diverges" and rows[0]["step"] == 1  # prefill right; the first cached step not
    assert run_cli("validate", folders["llama"], out).code == 0  # the untouched folder passes


def test_missing_extra_is_a_route_not_installed_and_the_next_route_wins(folders, tmp_path, monkeypatch):
    monkeypatch.setattr("onnxbridge.generation.genai.installed", lambda: False)
    with pytest.raises(ConversionError) as e:
        onnxbridge.convert(folders["llama"], tmp_path / "alone", routes=["genai"])
    assert "genai: not installed: pip install 'onnxbridge[genai]'" in e.value.message
    report = onnxbridge.convert(folders["llama"], tmp_path / "out", routes=["genai", "torchscript"], new_tokens=4)
    assert report.passed and report.conversion.route == "torchscript"
    lost = report.conversion.attempts[0]
    assert (lost.route, lost.ok, lost.error) == ("genai", False, "not installed: pip install 'onnxbridge[genai]'")
    assert DecoderSession(tmp_path / "out").layout.padding == "left"  # optimum's graph: left-padded rows


def test_generate_and_bench_run_a_genai_folder(folders, tmp_path_factory, tmp_path, run_cli):
    out, _ = built(folders, tmp_path_factory, "llama")
    res = run_cli("generate", out, "--prompt", "w5 w17 w33 w8", "--prompt", "w61", "--max-new-tokens", "4")
    assert res.code == 0, res.out + res.err
    js = tmp_path / "bench.json"
    args = ("--prompt-length", 6, "--new-tokens", 4, "--batch", "1,2", "--trials", 1, "--io-binding", "off")
    res = run_cli("bench", out, "--source", folders["llama"], *args, "--report", js)
    assert res.code == 0, res.out + res.err
    bench = check("report.schema.json", json.loads(js.read_text()))["decode_bench"]
    sides = {(r["runtime"], r["mode"], r["batch"]) for r in bench["rows"]}
    assert sides >= {
        ("onnxruntime", "feeds", 1),
        ("onnxruntime-genai", "generator", 1),
        ("onnxruntime-genai", "generator", 2),
    }
    assert bench["same_tokens"] == [True, True], bench["notes"]  # our loop, GenAI's Generator, transformers agree
