"""Fuzzing what a Hugging Face folder holds: its configs (auto_map, the processor's sizes) and safetensors headers that lie (length prefix, JSON,
dtypes, shapes, offsets, metadata) and valid files mutated byte by byte. ``read_folder`` must refuse
each cleanly (exit 2, the file named) or accept it; and a file it accepts must then load in the
safetensors library itself, so no header it lets through reaches transformers to die there (exit 4).
"""

from __future__ import annotations

import json
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .harness import loads_or_refuses
from .test_fuzz_loaders import mutated

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

DTYPES = [
    "F32",
    "F16",
    "BF16",
    "I64",
    "I8",
    "U8",
    "BOOL",
    "F64",
    "C64",
    "U64",
    "F8_E4M3",
    "F4",
    "F6_E2M3",
    "F8_E8M0",
    "Q7",
    "f32",
    "",
    "F32 ",
]


def _valid() -> bytes:
    tensors = {
        "a.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "a.bias": torch.ones(3, dtype=torch.float16),
        "b": torch.zeros(0, 4),
        "c": torch.tensor([True, False]),
    }
    return safetensors_torch.save(tensors, metadata={"format": "pt"})


VALID = _valid()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2**65) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def entries(draw, start: int) -> dict:
    shape = draw(st.lists(st.integers(0, 5) | st.sampled_from([-1, 2**40, 2**64]), max_size=3))
    entry = {"dtype": draw(st.sampled_from(DTYPES)), "shape": shape}
    size = draw(st.integers(0, 48))
    entry["data_offsets"] = draw(
        st.sampled_from(
            [[start, start + size]] * 6
            + [[start + 1, start + size], [start, -1], [start], [start, start + size, 0], [2**64, 0]]
        )
    )
    if draw(st.integers(0, 9)) == 0:
        entry[draw(st.sampled_from(["dtype", "shape", "data_offsets"]))] = draw(json_values)
    if draw(st.integers(0, 9)) == 0:
        entry.pop(draw(st.sampled_from(["dtype", "shape", "data_offsets"])))
    return entry


@st.composite
def hostile_files(draw) -> bytes:
    """A header built entry by entry, sizes and offsets mostly consistent, then lied about."""
    header: dict = {}
    if draw(st.booleans()):
        header["__metadata__"] = draw(
            st.dictionaries(st.text(max_size=4), st.text(max_size=4) | json_values, max_size=2)
        )
    start = 0
    for name in draw(st.lists(st.text(max_size=8), max_size=4, unique=True)):
        entry = draw(entries(start))
        header[name] = entry
        offsets = entry.get("data_offsets")
        if isinstance(offsets, list) and len(offsets) == 2 and isinstance(offsets[1], int) and offsets[1] < 2**16:
            start = max(start, offsets[1])
    text = json.dumps(header) if draw(st.integers(0, 9)) else json.dumps(draw(json_values))
    raw = text.encode() + b" " * draw(st.integers(0, 7))
    length = draw(st.sampled_from([len(raw)] * 8 + [len(raw) + 1, len(raw) - 1, 0, 2**63, 100_000_001]))
    data = b"\x00" * draw(st.sampled_from([start] * 4 + [start + 1, max(start - 1, 0), 0]))
    return struct.pack("<Q", max(length, 0)) + raw + data


def _folder(tmp_path: Path, weights: bytes) -> Path:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def _read_then_load(folder: Path):
    from onnxbridge.converters.hf_folder import read_folder

    found = read_folder(folder)
    safetensors_torch.load_file(folder / "model.safetensors")  # accepted: the library must agree
    return found


@given(st.one_of(hostile_files(), mutated(VALID)))
def test_fuzz_safetensors_headers(tmp_path, payload):
    folder = _folder(tmp_path, payload)
    loads_or_refuses(lambda: _read_then_load(folder), folder)


def test_the_valid_file_loads_and_its_truncations_are_refused(tmp_path):
    from onnxbridge.converters.hf_folder import read_folder
    from onnxbridge.errors import InputError

    assert read_folder(_folder(tmp_path, VALID)).weights[0].name == "model.safetensors"
    for cut in (0, 7, 8, 40, len(VALID) - 1):
        with pytest.raises(InputError, match="model.safetensors: unreadable safetensors weights"):
            read_folder(_folder(tmp_path, VALID[:cut]))


# ------------------------------------------------------------------ config.json and the processor's config
class _Model:
    """A stand-in for the loaded model (input_specs reads its main input, config and forward; a vision
    model is called once at another size), so configs are fuzzed without building transformers models."""

    def __init__(self, main: str, config: dict):
        from types import SimpleNamespace

        self.main_input_name = main
        self.config = SimpleNamespace(**config)

    def forward(
        self,
        input_ids=None,
        attention_mask=None,
        pixel_values=None,
        input_values=None,
        input_features=None,
        return_loss=None,
    ):
        return None

    def __call__(self, **kwargs):
        return self.forward(**kwargs)


sizes = st.one_of(st.integers(-3, 4096), st.sampled_from([None, True, "224", 1.5, [], {}]))
processor_configs = st.dictionaries(
    st.sampled_from(["crop_size", "size", "sampling_rate", "feature_size", "nb_max_frames", "other"]),
    sizes | st.dictionaries(st.sampled_from(["height", "width", "shortest_edge", "longest_edge"]), sizes, max_size=3),
    max_size=4,
)
auto_maps = st.one_of(
    json_values,
    st.dictionaries(
        st.sampled_from(["AutoConfig", "AutoModel", "AutoModelForCausalLM", "AutoTokenizer"]) | st.text(max_size=8),
        st.sampled_from(["modeling_x.Model", "x", "a.b.C", "repo--modeling_x.M", "../up.M", "/abs.M", "sub.mod.M"])
        | json_values,
        max_size=3,
    ),
)


@given(
    processor_configs,
    auto_maps,
    st.sampled_from(["pixel_values", "input_values", "input_features", "input_ids"]),
    st.booleans(),
    sizes | st.lists(sizes, max_size=3),
)
def test_fuzz_folder_configs(tmp_path, processor, auto_map, main, trust, image_size):
    from onnxbridge.converters.hf_folder import input_specs, read_folder

    folder = _folder(tmp_path, VALID)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "auto_map": auto_map}))
    (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    model = _Model(
        main, {"conv_kernel": [10, 3], "conv_stride": [5, 2], "vision_config": None, "image_size": image_size}
    )

    def read():
        return input_specs(read_folder(folder, trust=trust), model)

    loads_or_refuses(read, folder)
