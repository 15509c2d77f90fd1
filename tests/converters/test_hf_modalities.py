"""Hugging Face folders of every modality, as users bring them (tiny configs, random weights,
save_pretrained with the processor's config beside): raw audio (wav2vec2, HuBERT) with a dynamic number
of samples, images with dynamic height and width where the model runs at other sizes (ConvNeXt), and
text beside images (CLIP, SigLIP) with every input the forward needs. Each converts from its folder,
and its ONNX file is re-run on ONNX Runtime at sizes the validator did not use, against transformers.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import onnxbridge
from onnxbridge.converters.hf_folder import (
    FolderInputs,
    HfFolder,
    input_specs,
    merge_inputs,
)
from onnxbridge.errors import InputError, UsageError
from onnxbridge.specs import TensorSpec, parse_input_spec

transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

AUDIO = {
    "vocab_size": 32,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "intermediate_size": 64,
    "conv_dim": (16, 16),
    "conv_stride": (5, 2),
    "conv_kernel": (10, 3),
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 2,
}
TEXT = {
    "vocab_size": 100,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "max_position_embeddings": 40,
}
VISION = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "image_size": 32,
    "patch_size": 8,
}


def _save(folder: Path, model, processor=None) -> Path:
    model.eval().save_pretrained(folder)
    if processor is not None:
        processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    tf = transformers
    root = tmp_path_factory.mktemp("hf_modal")
    torch.manual_seed(0)
    _save(
        root / "wav2vec2",
        tf.Wav2Vec2ForCTC(tf.Wav2Vec2Config(**AUDIO, do_stable_layer_norm=True, feat_extract_norm="layer")),
        tf.Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000),
    )
    _save(root / "hubert", tf.HubertForCTC(tf.HubertConfig(**AUDIO)))  # no feature extractor's config: the default
    _save(
        root / "clip",
        tf.CLIPModel(
            tf.CLIPConfig(
                text_config=dict(TEXT, bos_token_id=1, eos_token_id=2, pad_token_id=0),
                vision_config=VISION,
                projection_dim=16,
            )
        ),
        tf.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
    )
    _save(root / "siglip", tf.SiglipModel(tf.SiglipConfig(text_config=TEXT, vision_config=VISION)))
    _save(
        root / "convnext",
        tf.ConvNextForImageClassification(
            tf.ConvNextConfig(
                num_channels=3, num_stages=2, hidden_sizes=[8, 16], depths=[1, 1], num_labels=10, patch_size=4
            )
        ),
        tf.ConvNextImageProcessor(size={"shortest_edge": 32}),
    )
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
    model = getattr(transformers, cls_name).from_pretrained(folder, local_files_only=True).eval()
    with torch.inference_mode():
        return model(**{k: torch.from_numpy(v) for k, v in feeds.items()}, return_dict=True)


def _sizes_used(report) -> set[str]:
    return {c.label for c in report.validation.cases}


@pytest.mark.route("torchscript")  # a folder: TorchScript first
@pytest.mark.parametrize("family, cls_name", [("wav2vec2", "Wav2Vec2ForCTC"), ("hubert", "HubertForCTC")])
def test_speech_folder_takes_any_number_of_samples(folders, tmp_path, run_cli, family, cls_name):
    out = tmp_path / f"{family}.onnx"
    # wav2vec2 with the --input the issue saw refused ("does not fit"); HuBERT with the inputs found
    given = ("--input", "input_values:batch,samples") if family == "wav2vec2" else ()
    res = run_cli("convert", folders[family], "-o", out, "--no-simplify", *given)
    assert res.code == 0, res.err
    assert _dims(out) == {"input_values": ["batch", "samples"]}
    # 2.5 s of audio at 16 kHz and a length no convolution stride divides: never in the validator's plan
    rng = np.random.default_rng(11)
    for batch, samples in ((3, 40_001), (1, 997)):
        feeds = {"input_values": rng.standard_normal((batch, samples)).astype(np.float32)}
        want = _transformers(cls_name, folders[family], feeds).logits.numpy()
        got = _ort(out, feeds)["logits"]
        assert got.shape == want.shape and want.shape[1] > 1
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.route("torchscript")  # a folder: TorchScript first
@pytest.mark.parametrize(
    "family, cls_name", [("clip", "CLIPModel"), pytest.param("siglip", "SiglipModel", marks=pytest.mark.slow)]
)
def test_text_and_image_folder_gets_every_input(folders, tmp_path, family, cls_name):
    out = tmp_path / f"{family}.onnx"
    report = onnxbridge.convert(folders[family], out, simplify=False)
    assert report.passed is True, report.validation.summary()
    assert _dims(out) == {
        "input_ids": ["batch", "sequence"],
        "attention_mask": ["batch", "sequence"],
        "pixel_values": ["image_batch", 3, 32, 32],
    }
    outputs = ("logits_per_image", "logits_per_text", "text_embeds", "image_embeds")
    assert report.conversion.output_names[:4] == outputs
    used = _sizes_used(report)
    assert not {"batch=3", "sequence=19", "image_batch=2"} & used
    rng = np.random.default_rng(5)
    feeds = {
        "input_ids": rng.integers(3, 100, (3, 19)),
        "attention_mask": np.ones((3, 19), np.int64),
        "pixel_values": rng.standard_normal((2, 3, 32, 32)).astype(np.float32),
    }
    feeds["attention_mask"][1, 12:] = 0
    want = _transformers(cls_name, folders[family], feeds)
    got = _ort(out, feeds)
    for name in outputs:
        np.testing.assert_allclose(got[name], want[name].numpy(), rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.mark.route("torchscript")  # a folder: TorchScript first
def test_image_folder_gets_dynamic_height_and_width_where_the_model_runs_at_other_sizes(folders, tmp_path):
    out = tmp_path / "convnext.onnx"
    report = onnxbridge.convert(folders["convnext"], out, simplify=False)
    assert report.passed is True, report.validation.summary()
    assert _dims(out) == {"pixel_values": ["batch", 3, "height", "width"]}
    assert not {"height=48", "width=40"} & _sizes_used(report)
    feeds = {"pixel_values": np.random.default_rng(2).standard_normal((3, 3, 48, 40)).astype(np.float32)}
    want = _transformers("ConvNextForImageClassification", folders["convnext"], feeds).logits.numpy()
    np.testing.assert_allclose(_ort(out, feeds)["logits"], want, rtol=1e-4, atol=1e-5)


def test_a_model_that_fixes_its_image_size_keeps_it_fixed():
    """ViT-like: the model refuses another size, so the input stays at the processor's size."""

    def forward(pixel_values):
        if tuple(pixel_values.shape[2:]) != (20, 28):
            raise ValueError("Input image size doesn't match model")

    model = SimpleNamespace(main_input_name="pixel_values", config=SimpleNamespace(num_channels=1), forward=forward)
    fixed = input_specs(HfFolder(Path("."), {}, {"crop_size": {"height": 20, "width": 28}}), _Callable(model))
    assert fixed == FolderInputs((TensorSpec("pixel_values", ("batch", 1, 20, 28)),))
    free = input_specs(
        HfFolder(Path("."), {}, {"size": 24}),
        _Callable(
            SimpleNamespace(main_input_name="pixel_values", config=SimpleNamespace(), forward=lambda pixel_values: None)
        ),
    )
    assert free == FolderInputs(
        (TensorSpec("pixel_values", ("batch", 3, "height", "width")),), (("height", 24), ("width", 24))
    )


@pytest.mark.parametrize("family", ["vit", "dinov2", "swin"])
def test_position_embeddings_and_windows_keep_the_image_size(family):
    """They run eagerly at other sizes, but a dynamic export ties height to width (DINOv2: exit 1 on a right
    model) or does not finish (Swin): the processor's size stays; --input can free it."""
    tf = transformers
    small = {
        "image_size": 32,
        "patch_size": 8,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 16,
    }
    model = {
        "vit": lambda: tf.ViTModel(tf.ViTConfig(hidden_size=16, **small)),
        "dinov2": lambda: tf.Dinov2Model(tf.Dinov2Config(hidden_size=16, **small)),
        "swin": lambda: tf.SwinModel(
            tf.SwinConfig(image_size=32, patch_size=4, embed_dim=8, depths=[1], num_heads=[2], window_size=4)
        ),
    }[family]().eval()
    folder = HfFolder(Path("."), {}, {"size": {"height": 32, "width": 32}})
    assert input_specs(folder, model) == FolderInputs((TensorSpec("pixel_values", ("batch", 3, 32, 32)),))


class _Callable:
    """A stand-in model: called as ``model(**inputs)``, as transformers models are."""

    def __init__(self, ns):
        self.__dict__.update(ns.__dict__)

    def __call__(self, **kwargs):
        return self.forward(**kwargs)


def test_audio_inputs_from_the_encoder_and_the_processor():
    from onnxbridge.converters.hf_inputs import min_samples

    conv = SimpleNamespace(conv_kernel=(10, 3), conv_stride=(5, 2))
    assert min_samples(conv) == 20  # (1 - 1) * 2 + 3 = 3 frames in, (3 - 1) * 5 + 10 = 20 samples
    assert min_samples(SimpleNamespace(conv_kernel=(10, 3, 3, 3, 3, 2, 2), conv_stride=(5, 2, 2, 2, 2, 2, 2))) == 400
    audio = _Callable(SimpleNamespace(main_input_name="input_values", config=conv, forward=lambda input_values: None))
    got = input_specs(HfFolder(Path("."), {}, {"sampling_rate": 8000}), audio)
    assert got == FolderInputs((TensorSpec("input_values", ("batch", "samples")),), (("samples", 800),))
    assert got.example()["input_values"].shape == (2, 800)
    with pytest.raises(InputError, match=r"preprocessor_config.json: sampling_rate is 'fast', not a positive size"):
        input_specs(HfFolder(Path("."), {}, {"sampling_rate": "fast"}), audio)
    ast = SimpleNamespace(max_length=64, num_mel_bins=16)  # a spectrogram (AST): frames and mel bins fixed
    spectro = _Callable(SimpleNamespace(main_input_name="input_values", config=ast, forward=lambda input_values: None))
    assert input_specs(HfFolder(Path("."), {}), spectro).specs == (TensorSpec("input_values", ("batch", 64, 16)),)


def test_input_adds_frees_or_fixes_any_input_by_name():
    found = FolderInputs(
        (
            TensorSpec("input_ids", ("batch", "sequence"), "int64"),
            TensorSpec("pixel_values", ("image_batch", 3, 32, 32)),
        ),
        (("samples", 800),),
    )
    params = ["input_ids", "pixel_values", "attention_mask", "position_ids"]
    given = [
        parse_input_spec("pixel_values:image_batch,3,h,w"),
        parse_input_spec("input_ids:1,7:int64"),
        parse_input_spec("attention_mask:1,7:int64"),
    ]
    got = merge_inputs(found, given, params, "F")
    assert got.specs == (
        TensorSpec("input_ids", (1, 7), "int64"),
        TensorSpec("pixel_values", ("image_batch", 3, "h", "w")),
        TensorSpec("attention_mask", (1, 7), "int64"),
    )
    assert dict(got.export_sizes) == {"samples": 800, "h": 32, "w": 32}  # freed axes export at their old size
    assert merge_inputs(found, [], params, "F") == found
    with pytest.raises(UsageError, match="takes no input of that name"):
        merge_inputs(found, [parse_input_spec("x:1,2")], params, "F")
    with pytest.raises(UsageError, match="has rank 3"):
        merge_inputs(found, [parse_input_spec("pixel_values:b,3,32")], params, "F")
