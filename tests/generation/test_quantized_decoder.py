"""int4 (MatMulNBits) and int8 (dynamic) copies of a with-past decoder, judged on generation against the fp32
files. Random-weight LMs have near-flat logits (any rounding flips the argmax), so the judge is a char-level
2-layer Llama trained for a few seconds on the bundled text (charlm.py, a session fixture): its logits are
peaked, and agreement means something. Both ways: the copies agree on >= 0.9 of 64 greedy tokens; a copy with one weight
corrupted does not."""

from __future__ import annotations

import numpy as np

import onnxbridge
from onnxbridge.generation.quant_gate import generation_agreement, quantize_with_past

from .charlm import OFFSET, CharLM


def _prompts(lm: CharLM) -> list[list[int]]:
    return [lm.encode(p) for p in ("The keeper", "and the ships saw", "In winter the storms came")]


def test_int4_and_int8_copies_keep_the_greedy_tokens(charlm, tmp_path):
    fp32 = charlm.fp32
    results = {
        q.quantized.kind: q
        for q in quantize_with_past(fp32, tmp_path, ("int4", "int8"), _prompts(charlm), new_tokens=64)
    }
    int4, int8 = results["int4"], results["int8"]
    assert int4.quantized.quantized_ops.get("com.microsoft::MatMulNBits", 0) == 15  # 7 per layer + the LM head
    assert int4.quantized.settings["block_size"] == 128
    assert int8.quantized.quantized_ops.get("MatMulInteger", 0) >= 14
    for q in (int4, int8):
        a = q.agreement
        assert q.passed, a.summary()
        assert len(a.agree) == 3 and all(len(row) == 64 for row in a.agree)
        # quantised: the logits move, but not far; judged against the logits' range (the absolute change grows
        # with a sharper LM's logits: 4.2 of a range of ~20 here; the shuffled head of the next test moves 1.0)
        assert a.max_drift > 0 and 0 < a.max_relative_drift < 0.5, a.summary()
        assert {"config.json", "generation_config.json", "model.onnx"} <= {p.name for p in q.quantized.folder.iterdir()}
    # the quantised folder generates through the same public loop
    out = onnxbridge.generate(int4.quantized.folder, prompt_ids=[_prompts(charlm)[0]], max_new_tokens=8)
    assert len(out.tokens[0]) == 8


def test_a_corrupted_copy_is_caught(charlm, tmp_path):
    """The fp32 folder with its LM head's weight shuffled: same shapes, other tokens; agreement collapses."""
    import shutil

    import onnx
    from onnx import numpy_helper

    fp32, chars = charlm.fp32, charlm.chars
    bad = tmp_path / "bad"
    shutil.copytree(fp32, bad)
    model = onnx.load(str(bad / "model.onnx"))
    head = max(
        model.graph.initializer, key=lambda t: (len(t.dims) == 2 and t.dims[-1] == len(chars) + OFFSET, np.prod(t.dims))
    )
    w = numpy_helper.to_array(head).copy()
    np.random.default_rng(0).shuffle(w, axis=-1)
    head.CopyFrom(numpy_helper.from_array(w, head.name))
    onnx.save(model, str(bad / "model.onnx"))
    a = generation_agreement(fp32, bad, _prompts(charlm), 32)
    assert a.token_agreement < 0.5 and a.max_relative_drift > 0.5, a.summary()
    assert all(f is not None for f in a.first_divergence), a.summary()
