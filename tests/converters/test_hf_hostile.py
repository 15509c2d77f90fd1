"""Hugging Face folders that are not what they seem: their own modeling code named in config.json's
``auto_map`` (refused without --trust-model; with it, that code really runs), and weights files that
cannot be read (truncated, garbage, a header that lies, a shard index that lies). Each refusal is
exit 2 naming the file and what is wrong; nothing is written; never an internal error.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import load_file, save_file

from tests.conftest import files_in

pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CONFIGURATION = """from transformers import PretrainedConfig


class TinyConfig(PretrainedConfig):
    model_type = "tiny-custom"

    def __init__(self, vocab_size=50, hidden=8, **kwargs):
        self.vocab_size, self.hidden = vocab_size, hidden
        super().__init__(**kwargs)
"""
MODELING = """import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from .configuration_tiny import TinyConfig


class TinyForSequenceClassification(PreTrainedModel):
    config_class = TinyConfig

    def __init__(self, config):
        super().__init__(config)
        self.embed = torch.nn.Embedding(config.vocab_size, config.hidden)
        self.head = torch.nn.Linear(config.hidden, config.num_labels)
        self.post_init()

    def forward(self, input_ids, attention_mask=None):
        x = torch.tanh(self.embed(input_ids)).mean(1)
        return SequenceClassifierOutput(logits=self.head(x) * 2.0 + 1.0)  # what no stock class computes
"""
AUTO_MAP = {
    "AutoConfig": "configuration_tiny.TinyConfig",
    "AutoModelForSequenceClassification": "modeling_tiny.TinyForSequenceClassification",
}


def _custom_folder(folder: Path) -> Path:
    folder.mkdir()
    (folder / "configuration_tiny.py").write_text(CONFIGURATION)
    (folder / "modeling_tiny.py").write_text(MODELING)
    (folder / "config.json").write_text(
        json.dumps(
            {
                "model_type": "tiny-custom",
                "architectures": ["TinyForSequenceClassification"],
                "vocab_size": 50,
                "hidden": 8,
                "id2label": {"0": "a", "1": "b", "2": "c"},
                "label2id": {"a": 0, "b": 1, "c": 2},
                "auto_map": AUTO_MAP,
            }
        )
    )
    g = torch.Generator().manual_seed(0)
    save_file(
        {
            "embed.weight": torch.randn(50, 8, generator=g),
            "head.weight": torch.randn(3, 8, generator=g),
            "head.bias": torch.randn(3, generator=g),
        },
        folder / "model.safetensors",
        metadata={"format": "pt"},
    )
    return folder


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("hf") / "bert"
    torch.manual_seed(0)
    BertForSequenceClassification(
        BertConfig(
            vocab_size=60,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=32,
            num_labels=2,
        )
    ).save_pretrained(folder, max_shard_size="5KB")
    return folder


def test_own_modeling_code_is_refused_without_trust_and_really_runs_with_it(tmp_path, run_cli):
    folder = _custom_folder(tmp_path / "custom")
    out = tmp_path / "custom.onnx"
    res = run_cli("convert", folder, "-o", out)
    assert res.code == 2, res.err
    assert "auto_map" in res.err and "modeling_tiny.py" in res.err and "--trust-model" in res.err
    assert "Traceback" not in res.err and not out.exists()

    res = run_cli("convert", folder, "-o", out, "--trust-model", "--json")
    assert res.code == 0, res.err
    report = json.loads(res.out)
    assert report["passed"] and report["outputs"] == ["logits"]
    assert any("TinyForSequenceClassification from the folder's own modeling_tiny.py" in n for n in report["notes"])
    # the custom forward, computed here from the weights at sizes the validator did not use
    w = {k: v.numpy() for k, v in load_file(folder / "model.safetensors").items()}
    ids = np.random.default_rng(3).integers(0, 50, (3, 13))
    want = (np.tanh(w["embed.weight"][ids]).mean(1) @ w["head.weight"].T + w["head.bias"]) * 2.0 + 1.0
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    feeds = {i.name: (ids if i.name == "input_ids" else np.ones_like(ids)) for i in sess.get_inputs()}
    np.testing.assert_allclose(sess.run(["logits"], feeds)[0], want, rtol=1e-5, atol=1e-5)


def test_a_stock_model_type_with_auto_map_is_not_silently_loaded_as_the_stock_class(bert, tmp_path, run_cli):
    folder = shutil.copytree(bert, tmp_path / "bert")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForSequenceClassification": "modeling_mine.MyBert"}
    (folder / "config.json").write_text(json.dumps(config))
    res = run_cli("convert", folder, "-o", tmp_path / "out.onnx")
    assert res.code == 2 and "modeling_mine.py" in res.err and "--trust-model" in res.err, res.err
    # with consent, the file it names must be there
    res = run_cli("convert", folder, "-o", tmp_path / "out.onnx", "--trust-model")
    assert res.code == 2 and "modeling_mine.py, which is not in the folder" in res.err, res.err
    config["auto_map"] = {"AutoModel": "someone/else--modeling_x.Model"}
    (folder / "config.json").write_text(json.dumps(config))
    res = run_cli("convert", folder, "-o", tmp_path / "out.onnx", "--trust-model")
    assert res.code == 2 and "another repository" in res.err, res.err
    assert not (tmp_path / "out.onnx").exists()


def test_a_tokenizer_auto_map_is_no_false_alarm(bert, tmp_path):
    from onnxbridge.converters.hf_folder import read_folder

    folder = shutil.copytree(bert, tmp_path / "bert")
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoTokenizer": ["tokenization_mine.MyTokenizer", None]}  # not loaded by onnxbridge
    (folder / "config.json").write_text(json.dumps(config))
    assert read_folder(folder).custom == ()


def _header(raw: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _with_header(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def _first(header: dict) -> str:
    return next(k for k in sorted(header) if k != "__metadata__")


def _lie(field: str, value):
    def edit(raw: bytes) -> bytes:
        header, data = _header(raw)
        header[_first(header)][field] = value(header[_first(header)][field])
        return _with_header(header, data)

    return edit


DAMAGE = {  # name -> (change to the shard's bytes, what the message must say)
    "truncated": (lambda raw: raw[: len(raw) - 100], "truncated"),
    "garbage": (lambda raw: b"PK\x03\x04 not a safetensors file" * 4, "not a safetensors file"),
    "header JSON": (lambda raw: raw[:9] + b"!" + raw[10:], "the header is not JSON"),
    "offsets past the end": (_lie("data_offsets", lambda o: [o[0], o[1] + 10**6]), "past its end"),
    "unknown dtype": (_lie("dtype", lambda d: "F12"), "dtype 'F12', which torch cannot load"),
    "empty": (lambda raw: b"", "fewer than the 8 of its header length"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_unreadable_weights_are_refused_naming_the_file(bert, tmp_path, run_cli, damage):
    change, says = DAMAGE[damage]
    folder = shutil.copytree(bert, tmp_path / "bert")
    shard = min(folder.glob("model-*.safetensors"))
    shard.write_bytes(change(shard.read_bytes()))
    before = files_in(folder)
    res = run_cli("convert", folder, "-o", tmp_path / "out.onnx")
    assert res.code == 2, res.err
    assert f"{shard.name}: unreadable safetensors weights" in res.err and says in res.err, res.err
    assert "internal error" not in res.err and "Traceback" not in res.err
    assert not (tmp_path / "out.onnx").exists() and files_in(folder) == before


def test_an_index_that_lies_about_a_shard_is_refused(bert, tmp_path, run_cli):
    folder = shutil.copytree(bert, tmp_path / "bert")
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1
    tensor = next(t for t, s in index["weight_map"].items() if s == shards[0])
    index["weight_map"][tensor] = shards[1]
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    res = run_cli("convert", folder, "-o", tmp_path / "out.onnx")
    assert res.code == 2 and f"tensor '{tensor}' is said to be in {shards[1]}" in res.err, res.err


def test_weights_that_lack_a_tensor_are_refused_not_randomly_initialised(bert, tmp_path, run_cli):
    """transformers fills a missing tensor with random values; parity would then check noise against itself."""
    folder = tmp_path / "bert"
    folder.mkdir()
    shutil.copy(bert / "config.json", folder)
    weights = {}
    for shard in bert.glob("model-*.safetensors"):
        weights.update(load_file(shard))
    del weights["classifier.weight"]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    res = run_cli("convert", folder, "-o", tmp_path / "out.onnx")
    assert res.code == 2 and "model.safetensors lack 1 tensor(s) the model needs (classifier.weight)" in res.err, (
        res.err
    )
    assert not (tmp_path / "out.onnx").exists()


@pytest.fixture(scope="module")
def convnext(tmp_path_factory) -> Path:
    from transformers import ConvNextConfig, ConvNextForImageClassification

    folder = tmp_path_factory.mktemp("hf") / "convnext"
    torch.manual_seed(0)
    ConvNextForImageClassification(
        ConvNextConfig(num_channels=3, num_stages=2, hidden_sizes=[8, 16], depths=[1, 1], num_labels=4, patch_size=4)
    ).save_pretrained(folder)
    return folder


BAD_VALUES = [  # (file, key, value, what the message names)
    ("preprocessor_config.json", "crop_size", {"height": "abc", "width": 32}, "crop_size.height is 'abc'"),
    ("preprocessor_config.json", "size", -5, "size is -5"),
    ("preprocessor_config.json", "size", {"shortest_edge": None}, "size.shortest_edge is None"),
    ("preprocessor_config.json", "crop_size", 0, "crop_size is 0"),
    ("config.json", "hidden_sizes", "abc", "could not build the model from config.json"),
]


@pytest.mark.parametrize("file, key, value, says", BAD_VALUES, ids=[f"{b[0]}:{b[1]}" for b in BAD_VALUES])
def test_bad_values_in_the_configs_are_exit_2_naming_the_file(convnext, tmp_path, run_cli, file, key, value, says):
    """Found: each was an internal error (exit 4): int('abc'), negative dimensions, a config validator's error."""
    folder = shutil.copytree(convnext, tmp_path / "convnext")
    path = folder / file
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    path.write_text(json.dumps(data))
    res = run_cli("convert", folder, "-o", tmp_path / "out.onnx", "--no-validate")
    assert res.code == 2 and says in res.err and "internal error" not in res.err, res.err
    assert not (tmp_path / "out.onnx").exists()
