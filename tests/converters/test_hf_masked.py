"""A sliding-window decoder folder (gemma3_text) converted without its cache: padded positions, whose rows may
attend to nothing, are left out of the comparison and counted, and the real tokens are checked. The file is
re-run on ONNX Runtime at a left-padded batch and length the validator did not use, against transformers."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

import onnxbridge

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def gemma3(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gemma3") / "gemma3_text"
    torch.manual_seed(0)
    config = transformers.Gemma3TextConfig(
        vocab_size=96,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=64,
        sliding_window=4,
        layer_types=["sliding_attention", "full_attention"],
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    transformers.Gemma3ForCausalLM(config).eval().save_pretrained(folder)
    return folder


def test_gemma3_text_passes_with_masked_positions_left_out(gemma3, tmp_path):
    out = tmp_path / "gemma3.onnx"  # a file, not a folder: the single graph without its KV cache
    report = onnxbridge.convert(gemma3, out, provider="cpu")
    v = report.validation
    assert report.passed, v.summary()
    assert v.masked_positions > 0, "generated masks hold padded positions, and they are not compared"
    used = {tuple(s) for c in v.cases for s in c.shapes.values()}

    # left-padded batch of 3 at length 11: a shape the validator did not use
    rng = np.random.default_rng(7)
    ids = rng.integers(3, 96, size=(3, 11), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, :4] = 0
    mask[2, :9] = 0
    ids[mask == 0] = 0
    assert (3, 11) not in used
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    feeds = {"input_ids": ids, "attention_mask": mask}
    got = sess.run(None, {k: feeds[k] for k in names})[0]
    model = transformers.AutoModelForCausalLM.from_pretrained(gemma3, local_files_only=True).eval()
    with torch.inference_mode():
        want = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), use_cache=False).logits
    real = mask.astype(bool)
    np.testing.assert_allclose(got[real], want.numpy()[real], atol=1e-4, rtol=1e-3)
