"""Fuzzing the loaders of every file and string onnxbridge takes from a user.

ONNX protobufs (``load_onnx``, ``inspect``), ``.npz`` fixtures (``read_fixtures``), the manifest
(``load_manifest``), ``.keras`` zips, ``.pt2`` archives and ``--input`` specs. Inputs are valid
files mutated byte by byte and structured hostile values (future versions, external data that
leaves its folder, absurd shapes, pickles). Each must load or be refused cleanly (see harness.py).
A crash found here becomes a regression test in test_fuzz_regressions.py.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from .harness import loads_or_refuses

pytestmark = pytest.mark.filterwarnings("ignore:Duplicate name")

HOSTILE_LOCATIONS = [
    "../evil.data",
    "/etc/passwd",
    "a/../../b",
    "",
    ".",
    "link.data",
    "model.onnx.data",
    "sub/x",
    "model.onnx",
    "\x00",
    "%s" * 10,
    "a" * 300,
]


def _fresh(tmp_path: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=tmp_path))


# ----------------------------------------------------------------------------------------- ONNX
def _tiny():
    from tests.parity import onnx_models

    return onnx_models.mlp()


@st.composite
def mutated(draw, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "splice"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[i] ^= draw(st.integers(1, 255))
        elif kind == "truncate":
            del data[i:]
        elif kind == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[i : i + draw(st.integers(1, 32))] = draw(st.binary(max_size=32))
    return bytes(data)


@st.composite
def hostile_model(draw) -> tuple[bytes, bytes | None]:
    """(model bytes, external data bytes or None): versions, opsets, types, dims and external
    references a real model never has."""
    import onnx

    model = _tiny()
    model.ir_version = draw(st.integers(-1, 40))
    del model.opset_import[:]
    for _ in range(draw(st.integers(0, 3))):
        op = model.opset_import.add()
        op.domain = draw(st.sampled_from(["", "ai.onnx", "ai.onnx.ml", "ai.onnx.training", "com.microsoft", "x.y"]))
        op.version = draw(st.integers(-5, 80))
    init = model.graph.initializer[draw(st.integers(0, len(model.graph.initializer) - 1))]
    if draw(st.booleans()):
        init.data_type = draw(st.integers(0, 40))
    if draw(st.booleans()):
        del init.dims[:]
        init.dims.extend(draw(st.lists(st.integers(-3, 2**40), max_size=4)))
    data = None
    if draw(st.booleans()):
        init.ClearField("raw_data")
        del init.float_data[:]
        init.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (
            ("location", draw(st.sampled_from(HOSTILE_LOCATIONS) | st.text(max_size=20))),
            ("offset", draw(st.sampled_from(["0", "-1", "4096", "x", str(2**62)]))),
            ("length", draw(st.sampled_from(["0", "16", "-5", "y", str(2**62)]))),
        ):
            entry = init.external_data.add()
            entry.key, entry.value = key, value
        data = draw(st.binary(max_size=64))
    value = model.graph.input[0].type.tensor_type
    if draw(st.booleans()):
        value.elem_type = draw(st.integers(0, 40))
    return model.SerializeToString(), data


def _write_onnx(folder: Path, payload: bytes, data: bytes | None) -> Path:
    path = folder / "model.onnx"
    path.write_bytes(payload)
    if data is not None:
        (folder / "model.onnx.data").write_bytes(data)
    return path


def _load_and_inspect(path: Path):
    from onnxbridge.onnxio import input_specs, load_onnx, model_info

    model = load_onnx(path)
    input_specs(model)
    return model_info(path)


@given(st.one_of(mutated(_tiny().SerializeToString()).map(lambda b: (b, None)), hostile_model()))
def test_fuzz_onnx_files(tmp_path, case):
    folder = _fresh(tmp_path)
    path = _write_onnx(folder, *case)
    loads_or_refuses(lambda: _load_and_inspect(path), folder)


@given(hostile_model())
def test_fuzz_inspect_cli_never_shows_a_traceback(tmp_path, capsys, case):
    from onnxbridge.cli import main

    folder = _fresh(tmp_path)
    path = _write_onnx(folder, *case)
    code = main(["inspect", str(path), "--json"])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    assert "Traceback" not in err and "internal error" not in err, err


# ------------------------------------------------------------------------------------ fixtures
def _npy(arr, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


NPY_HEADERS = [  # valid magic, lying headers
    b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }" + b" " * 43 + b"\n",
    b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (2,), }" + b" " * 59 + b"\n",
    b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }" + b" " * 57 + b"\n",
    b"\x93NUMPY\x03\x00\x10\x00\x00\x00__import__('os')",
]

member_names = st.sampled_from(
    [
        "inputs::c::x.npy",
        "outputs::c::y.npy",
        "meta.npy",
        "x.npy",
        "inputs::c.npy",
        "../evil.npy",
        "inputs::::x.npy",
        "outputs::c::y",
        "inputs::c::x.npy",
    ]
) | st.text(max_size=12).filter(lambda s: "\x00" not in s).map(lambda s: s + ".npy")  # zipfile cuts names at NUL
member_bytes = st.one_of(
    st.builds(
        lambda a: _npy(a),
        st.sampled_from(
            [
                np.zeros(3, np.float32),
                np.arange(6).reshape(2, 3),
                np.array(1.5),
                np.zeros((0, 4)),
                np.array([True]),
                np.array(["a"]),
            ]
        ),
    ),
    st.just(_npy(np.array([{"a": 1}], dtype=object), allow_pickle=True)),
    st.sampled_from(NPY_HEADERS).map(lambda h: h + b"\x00" * 8),
    st.binary(max_size=64),
)


@st.composite
def npz_files(draw) -> bytes:
    buf = io.BytesIO()
    method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in draw(st.lists(st.tuples(member_names, member_bytes), max_size=5)):
            z.writestr(name, data)
    raw = buf.getvalue()
    return draw(mutated(raw)) if draw(st.booleans()) else raw


@given(npz_files())
def test_fuzz_fixtures(tmp_path, payload):
    from onnxbridge.parity.fixtures import FixtureRunner, read_fixtures

    folder = _fresh(tmp_path)
    path = folder / "fixtures.npz"
    path.write_bytes(payload)

    def load():
        fixtures = read_fixtures(path)
        if fixtures.outputs:
            FixtureRunner(fixtures, fixtures.inputs, ("y",))
        return fixtures

    loads_or_refuses(load, folder)


# ------------------------------------------------------------------------------------ manifest
toml_values = st.one_of(
    st.text(max_size=20),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.booleans(),
    st.lists(st.text(max_size=12), max_size=3),
)
KEYS = [
    "name",
    "source",
    "onnx",
    "inputs",
    "fixtures",
    "atol",
    "rtol",
    "provider",
    "framework",
    "opset",
    "simplify",
    "reexport",
    "seed",
    "trust_model",
    "watch",
    "bogus",
]


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if value != value
            else ("inf" if value == float("inf") else ("-inf" if value < 0 and value == float("-inf") else repr(value)))
        )
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value) if isinstance(value, str) else str(value)


@st.composite
def manifests(draw) -> str:
    if draw(st.booleans()):
        return draw(st.text(max_size=200))
    lines = []
    for _ in range(draw(st.integers(0, 3))):
        lines.append("[[models]]")
        for key in draw(st.lists(st.sampled_from(KEYS), max_size=8, unique=True)):
            value = draw(toml_values | st.sampled_from(["models.py:net", "a.onnx", "../../etc/passwd", "x:batch,3"]))
            lines.append(f"{key} = {_toml(value)}")
    return "\n".join(lines) + "\n"


@given(manifests())
def test_fuzz_manifest(tmp_path, text):
    from onnxbridge.gate.manifest import load_manifest

    folder = _fresh(tmp_path)
    (folder / "models.py").write_text("def net():\n    pass\n")
    path = folder / "onnxbridge.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass") if False else path.write_bytes(
        text.encode("utf-8", errors="replace")
    )
    loads_or_refuses(lambda: load_manifest(path), folder)


# ------------------------------------------------------------------------------- --input specs
@given(
    st.text(max_size=40)
    | st.sampled_from(
        ["x:batch,3:float32", "x:0", "x::", ":1", "x:1,,2", "x:1:int", "x:seq=1..24", "x:" + "9" * 40, "x:b:bfloat16"]
    )
)
def test_fuzz_input_specs(text):
    from onnxbridge.specs import parse_input_spec, parse_input_specs

    with tempfile.TemporaryDirectory() as d:
        loads_or_refuses(lambda: (parse_input_spec(text), parse_input_specs([text, text])), Path(d), echoes=[text])


# ------------------------------------------------------------------------------------ archives
keras_configs = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "class_name",
                    "config",
                    "module",
                    "registered_name",
                    "layers",
                    "name",
                    "units",
                    "build_config",
                    "input_shape",
                    "function",
                    "dtype",
                ]
            )
            | st.text(max_size=6),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@st.composite
def keras_zips(draw) -> bytes:
    config = draw(
        st.fixed_dictionaries(
            {
                "class_name": st.sampled_from(["Sequential", "Functional", "Dense", "Lambda", "NotAClass", "Model"]),
                "module": st.sampled_from(
                    ["keras", "keras.layers", "keras.models", "builtins", "json", "nosuchmodule"]
                ),
                "config": keras_configs,
            }
        )
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        if draw(st.booleans()):
            z.writestr("config.json", json.dumps(config))
        if draw(st.booleans()):
            z.writestr("metadata.json", json.dumps({"keras_version": draw(st.sampled_from(["3.15.1", "2.0", "99"]))}))
        if draw(st.booleans()):
            z.writestr("model.weights.h5", draw(st.binary(max_size=64)))
    return buf.getvalue()


@pytest.mark.slow
@given(keras_zips())
def test_fuzz_keras_archives(tmp_path, payload):
    pytest.importorskip("keras")
    from onnxbridge.converters.keras import load_keras_file

    folder = _fresh(tmp_path)
    path = folder / "model.keras"
    path.write_bytes(payload)
    loads_or_refuses(lambda: load_keras_file(path, trust=False), folder)


@pytest.fixture(scope="module")
def pt2_bytes(tmp_path_factory) -> bytes:
    torch = pytest.importorskip("torch")
    path = tmp_path_factory.mktemp("pt2") / "m.pt2"
    module = torch.nn.Sequential(torch.nn.Linear(4, 2))
    torch.export.save(torch.export.export(module, (torch.randn(1, 4),)), str(path))
    return path.read_bytes()


@st.composite
def pt2_archives(draw, base: bytes) -> bytes:
    """The valid archive with one member replaced, dropped or mutated, or a zip of random members."""
    if draw(st.booleans()):
        return draw(npz_files())
    src = zipfile.ZipFile(io.BytesIO(base))
    names = src.namelist()
    victim = draw(st.sampled_from(names))
    action = draw(st.sampled_from(["drop", "replace", "mutate"]))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in names:
            data = src.read(name)
            if name == victim:
                if action == "drop":
                    continue
                data = draw(st.binary(max_size=64)) if action == "replace" else draw(mutated(data))
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.slow
@given(data=st.data())
def test_fuzz_pt2_archives(tmp_path, pt2_bytes, data):
    from onnxbridge.converters.torch_utils import load_exported_program

    folder = _fresh(tmp_path)
    path = folder / "model.pt2"
    path.write_bytes(data.draw(pt2_archives(pt2_bytes)))
    loads_or_refuses(lambda: load_exported_program(path, trust=False), folder)
