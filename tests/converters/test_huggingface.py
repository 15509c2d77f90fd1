"""Hugging Face model folders as SOURCE: tiny BERT (sharded safetensors), ViT (with its image processor's
config) and Whisper (with its feature extractor's config), saved with save_pretrained, random weights.
Each converts from its folder with parity, and its ONNX file is re-run on ONNX Runtime at sizes the
validator did not use against transformers itself. No network: socket connections fail in these tests.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import onnxbridge
from tests.conftest import files_in

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


HUB_OFFLINE_BEFORE = os.environ.get("HF_HUB_OFFLINE")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access attempted in an offline test")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def _bert(folder: Path, positions: int = 64, **save) -> Path:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=120,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=positions,
        num_labels=3,
    )
    BertForSequenceClassification(cfg).save_pretrained(folder, **save)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    from transformers import (
        ViTConfig,
        ViTForImageClassification,
        ViTImageProcessor,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    root = tmp_path_factory.mktemp("hf")
    _bert(root / "bert", max_shard_size="40KB")
    torch.manual_seed(1)
    ViTForImageClassification(
        ViTConfig(
            image_size=32,
            patch_size=8,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            num_labels=5,
        )
    ).save_pretrained(root / "vit")
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(root / "vit")
    torch.manual_seed(2)
    WhisperForConditionalGeneration(
        WhisperConfig(
            vocab_size=100,
            num_mel_bins=16,
            encoder_layers=1,
            decoder_layers=1,
            encoder_attention_heads=2,
            decoder_attention_heads=2,
            d_model=32,
            encoder_ffn_dim=64,
            decoder_ffn_dim=64,
            max_source_positions=20,
            max_target_positions=32,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=1,
        )
    ).save_pretrained(root / "whisper")
    WhisperFeatureExtractor(feature_size=16, chunk_length=1, hop_length=400).save_pretrained(root / "whisper")
    return {p.name: p for p in root.iterdir()}


def _dims(path: Path) -> dict[str, list]:
    return {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in onnx.load(str(path)).graph.input
    }


def _ort(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def _transformers(cls_name: str, folder: Path, feeds: dict[str, np.ndarray]):
    import transformers

    model = getattr(transformers, cls_name).from_pretrained(folder, local_files_only=True).eval()
    with torch.inference_mode():
        return model(**{k: torch.from_numpy(v) for k, v in feeds.items()}, return_dict=True)


@pytest.fixture(scope="module")
def bert_default(folders, tmp_path_factory):
    """The bert folder converted with the default route order: (report, ONNX file)."""
    out = tmp_path_factory.mktemp("bert") / "bert.onnx"
    return onnxbridge.convert(folders["bert"], out), out


@pytest.mark.route("torchscript")
def test_bert_folder_with_sharded_safetensors(folders, bert_default):
    assert (folders["bert"] / "model.safetensors.index.json").is_file()
    report, out = bert_default
    assert report.passed is True and report.framework == "huggingface", report.validation.summary()
    # TorchScript first for a folder (as optimum exports); its product passed, so dynamo never ran, and says so
    assert report.conversion.route == "torchscript"
    assert report.conversion.route_order == ("torchscript", "torch.export/dynamo")
    assert report.conversion.not_tried == ("torch.export/dynamo",)
    assert [a.route for a in report.conversion.attempts] == ["torchscript"]
    assert any("routes not tried: torch.export/dynamo" in n for n in report.conversion.notes)
    data = report.to_dict()
    assert data["route_order"] == ["torchscript", "torch.export/dynamo"]
    assert data["routes_not_tried"] == ["torch.export/dynamo"]
    assert any("BertForSequenceClassification (from config.json's architectures)" in n for n in report.conversion.notes)
    assert report.conversion.output_names == ("logits",)
    assert _dims(out) == {k: ["batch", "sequence"] for k in ("input_ids", "attention_mask", "token_type_ids")}
    assert {"batch=5", "sequence=11", "all axes larger"} <= {c.label for c in report.validation.cases}
    # where the time went: each route tried, and each case's runs on both sides
    assert {f"export.{a.route}_s" for a in report.conversion.attempts} <= set(report.timings)
    assert {"load_s", "export_s", "simplify_s", "validate_s", "validate.source_s", "validate.onnx_s"} <= set(
        report.timings
    )
    judged = [c for c in report.validation.cases if c.kind.value != "source_limit"]
    assert judged and all(c.source_s is not None and c.onnx_s is not None for c in judged)
    assert report.timings["validate.onnx_s"] == pytest.approx(sum(c.onnx_s for c in judged))
    # batch 3, sequence 13: sizes the validator did not use; transformers itself as the truth
    rng = np.random.default_rng(7)
    feeds = {
        "input_ids": rng.integers(0, 120, (3, 13)),
        "attention_mask": np.ones((3, 13), np.int64),
        "token_type_ids": rng.integers(0, 2, (3, 13)),
    }
    feeds["attention_mask"][1, 9:] = 0
    want = _transformers("BertForSequenceClassification", folders["bert"], feeds).logits.numpy()
    np.testing.assert_allclose(_ort(out, feeds)["logits"], want, rtol=1e-4, atol=1e-5)
    assert os.environ.get("HF_HUB_OFFLINE") == HUB_OFFLINE_BEFORE  # set while loading only


@pytest.mark.route("torch.export/dynamo")
def test_torchscript_first_checks_the_cases_dynamo_checked(folders, bert_default, tmp_path):
    """The route order changes the exporter, not the check: the TorchScript product is swept over the same
    cases (the exported range of each axis comes from torch.export either way) as dynamo's, and both hold."""
    ts_report, _ = bert_default
    out = tmp_path / "dynamo.onnx"
    report = onnxbridge.convert(folders["bert"], out, routes=["torch.export/dynamo"], simplify=False)
    assert report.passed is True, report.validation.summary()
    assert report.conversion.route == "torch.export/dynamo" and report.conversion.not_tried == ()
    assert report.conversion.route_order == ("torch.export/dynamo",)
    labels = [(c.label, c.kind) for c in report.validation.cases]
    assert labels == [(c.label, c.kind) for c in ts_report.validation.cases]
    assert report.conversion.axis_ranges == ts_report.conversion.axis_ranges
    assert {("sequence", 64)} <= {(a.axis, a.hi) for a in ts_report.conversion.axis_ranges}  # the position limit
    feeds = {
        "input_ids": np.random.default_rng(8).integers(0, 120, (4, 17)),
        "attention_mask": np.ones((4, 17), np.int64),
        "token_type_ids": np.zeros((4, 17), np.int64),
    }
    want = _transformers("BertForSequenceClassification", folders["bert"], feeds).logits.numpy()
    np.testing.assert_allclose(_ort(out, feeds)["logits"], want, rtol=1e-4, atol=1e-5)


def test_a_torchscript_product_off_parity_falls_through_to_dynamo(folders, tmp_path, monkeypatch):
    """The first route is held to parity: a TorchScript graph whose weights are off (here: made off) loses to
    torch.export/dynamo, and the report says why it lost and in what order the routes ran."""
    from onnx import numpy_helper

    from onnxbridge.converters.torch_routes import TorchScriptRoute

    real = TorchScriptRoute.export

    def off(self, loaded, request):
        product = real(self, loaded, request)
        big = max(product.model.graph.initializer, key=lambda t: np.prod(t.dims))
        big.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(big) * 1.5, big.name))
        return product

    monkeypatch.setattr(TorchScriptRoute, "export", off)
    out = tmp_path / "bert.onnx"
    report = onnxbridge.convert(folders["bert"], out, simplify=False)
    assert report.passed is True, report.validation.summary()
    conv = report.conversion
    assert conv.route == "torch.export/dynamo" and conv.not_tried == ()
    assert [(a.route, a.parity) for a in conv.attempts] == [("torchscript", False), ("torch.export/dynamo", True)]
    assert "parity: output 'logits'" in conv.attempts[0].error
    feeds = {
        "input_ids": np.random.default_rng(9).integers(0, 120, (2, 21)),
        "attention_mask": np.ones((2, 21), np.int64),
        "token_type_ids": np.zeros((2, 21), np.int64),
    }
    want = _transformers("BertForSequenceClassification", folders["bert"], feeds).logits.numpy()
    np.testing.assert_allclose(_ort(out, feeds)["logits"], want, rtol=1e-4, atol=1e-5)


def test_vit_folder_takes_its_size_from_the_processor(folders, tmp_path):
    out = tmp_path / "vit.onnx"
    report = onnxbridge.convert(folders["vit"], out)
    assert report.passed is True, report.validation.summary()
    assert _dims(out) == {"pixel_values": ["batch", 3, 32, 32]}
    feeds = {"pixel_values": np.random.default_rng(3).standard_normal((3, 3, 32, 32)).astype(np.float32)}
    want = _transformers("ViTForImageClassification", folders["vit"], feeds).logits.numpy()
    np.testing.assert_allclose(_ort(out, feeds)["logits"], want, rtol=1e-4, atol=1e-5)


def test_inputs_come_from_the_processor_config_first():
    from types import SimpleNamespace

    from onnxbridge.converters.hf_folder import HfFolder, input_specs

    model = SimpleNamespace(
        main_input_name="pixel_values",
        config=SimpleNamespace(num_channels=1, image_size=224),
        forward=lambda pixel_values: None,
    )
    crop = HfFolder(Path("."), {}, {"crop_size": {"height": 20, "width": 28}, "size": {"shortest_edge": 40}})
    assert [s.dims for s in input_specs(crop, model).specs] == [("batch", 1, 20, 28)]
    assert [s.dims for s in input_specs(HfFolder(Path("."), {}), model).specs] == [("batch", 1, 224, 224)]
    audio = SimpleNamespace(main_input_name="input_values", config=SimpleNamespace(), forward=lambda input_values: None)
    got = input_specs(HfFolder(Path("."), {}, {"sampling_rate": 8000}), audio)  # samples: dynamic, exported at 800
    assert [s.dims for s in got.specs] == [("batch", "samples")] and dict(got.export_sizes) == {"samples": 800}


def test_whisper_folder_exports_without_caches(folders, tmp_path):
    out = tmp_path / "whisper.onnx"
    report = onnxbridge.convert(folders["whisper"], out)
    assert report.passed is True, report.validation.summary()
    assert report.conversion.output_names == ("logits", "encoder_last_hidden_state")  # no past_key_values
    assert _dims(out) == {"input_features": ["batch", 16, 40], "decoder_input_ids": ["batch", "decoder_sequence"]}
    rng = np.random.default_rng(4)
    feeds = {
        "input_features": rng.standard_normal((3, 16, 40)).astype(np.float32),
        "decoder_input_ids": rng.integers(0, 100, (3, 6)),
    }
    want = _transformers("WhisperForConditionalGeneration", folders["whisper"], feeds)
    got = _ort(out, feeds)
    np.testing.assert_allclose(got["logits"], want.logits.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        got["encoder_last_hidden_state"], want.encoder_last_hidden_state.numpy(), rtol=1e-4, atol=1e-4
    )


def test_task_override_through_the_cli(folders, tmp_path, run_cli):
    out = tmp_path / "feat.onnx"
    res = run_cli("convert", folders["bert"], "-o", out, "--task", "feature-extraction", "--no-simplify", "--json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["framework"] == "huggingface" and data["passed"]
    assert data["outputs"] == ["last_hidden_state", "pooler_output"]
    feeds = {
        "input_ids": np.random.default_rng(5).integers(0, 120, (1, 5)),
        "attention_mask": np.ones((1, 5), np.int64),
        "token_type_ids": np.zeros((1, 5), np.int64),
    }
    want = _transformers("BertModel", folders["bert"], feeds)
    np.testing.assert_allclose(
        _ort(out, feeds)["last_hidden_state"], want.last_hidden_state.numpy(), rtol=1e-4, atol=1e-5
    )
    res = run_cli("convert", folders["bert"], "-o", tmp_path / "x.onnx", "--task", "painting")
    assert res.code == 2 and "unknown --task 'painting'" in res.err
    res = run_cli("convert", "tests/models/torch_models.py:cnn", "-o", tmp_path / "x.onnx", "--task", "fill-mask")
    assert res.code == 2 and "--task does not apply to pytorch" in res.err


def test_pickle_weights_need_trust(tmp_path, run_cli):
    from safetensors.torch import load_file

    from onnxbridge.api import load_source

    folder = _bert(tmp_path / "pickled")  # transformers 5 writes safetensors only: make the pickle by hand
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    assert files_in(folder) == {"config.json", "pytorch_model.bin"}
    res = run_cli("convert", folder, "-o", tmp_path / "out.onnx")
    assert res.code == 2 and "pytorch_model.bin" in res.err and "--trust-model" in res.err
    assert not (tmp_path / "out.onnx").exists()
    _, loaded = load_source(str(folder), trust_model=True)
    assert loaded.framework == "huggingface" and loaded.state.output_names == ("logits",)


def test_missing_and_malformed_files_name_the_file(folders, tmp_path, run_cli):
    import shutil

    sharded = shutil.copytree(folders["bert"], tmp_path / "bert")
    shard = sorted(sharded.glob("model-*.safetensors"))[-1]
    shard.unlink()
    res = run_cli("convert", sharded, "-o", tmp_path / "out.onnx")
    assert res.code == 2 and shard.name in res.err and "missing" in res.err

    empty = tmp_path / "empty"
    empty.mkdir()
    res = run_cli("convert", empty, "-o", tmp_path / "out.onnx", "--framework", "huggingface")
    assert res.code == 2 and "config.json is missing" in res.err
    (empty / "config.json").write_text("{broken")
    res = run_cli("convert", empty, "-o", tmp_path / "out.onnx")
    assert res.code == 2 and "config.json" in res.err and "Traceback" not in res.err
    (empty / "config.json").write_text(json.dumps({"model_type": "bert"}))
    res = run_cli("convert", empty, "-o", tmp_path / "out.onnx")
    assert res.code == 2 and "no weights file" in res.err
    assert not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize("name", ["bert", "whisper"])
def test_the_forked_probe_answers_as_the_probe_in_process(folders, name):
    """The TorchScript route probes torch.export in a forked child beside its own export: the same verdict
    and the same exported range per axis (so the same cases) as the probe run in this process."""
    from onnxbridge.api import load_source
    from onnxbridge.converters.forked import fork_call
    from onnxbridge.converters.torch_routes import _probe

    _, loaded = load_source(str(folders[name]))
    here = _probe(loaded)
    forked = fork_call(lambda: _probe(loaded))
    assert forked is not None  # Linux, 2+ CPUs: the test machines
    assert forked.result() == here
    assert here[0] is False and here[1]  # it traced, and found ranges
    if name == "bert":
        assert ("sequence", 64) in {(a.axis, a.hi) for a in here[1]}


def test_a_forked_call_that_fails_gives_no_result_and_the_route_probes_itself(folders, monkeypatch):
    """A child that raises (or dies) sends nothing; the probe then runs in process, with the same answers."""
    from onnxbridge.api import load_source
    from onnxbridge.converters import forked as forked_module
    from onnxbridge.converters.torch_routes import DataDependenceProbe, _probe

    def boom() -> None:
        raise RuntimeError("no")

    failed = forked_module.fork_call(boom)
    assert failed is not None and failed.result() is None
    stuck = forked_module.fork_call(lambda: time.sleep(60))  # a child stuck on a lock the fork copied held
    assert stuck is not None
    t0 = time.perf_counter()
    assert stuck.result(timeout=0.5) is None and time.perf_counter() - t0 < 10  # killed, not waited for
    _, loaded = load_source(str(folders["bert"]))
    real = forked_module.fork_call
    monkeypatch.setattr(forked_module, "fork_call", lambda fn: real(boom))
    probe = DataDependenceProbe()
    probe.start(loaded)
    assert probe.exported_axes(loaded) == _probe(loaded)[1] and probe.verdict is False
