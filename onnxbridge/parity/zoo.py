"""Expected outputs shipped with a model in the ONNX model zoo's layout, read as golden fixtures:

    model.onnx
    test_data_set_0/input_0.pb ... output_0.pb ...
    test_data_set_1/...

Each ``.pb`` is a serialised ``TensorProto`` (parsed as protobuf: nothing is unpickled). A tensor is
matched to the graph input or output of its name when it has one, else by position.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._util import first_line
from ..errors import InputError
from .fixtures import Fixtures

if TYPE_CHECKING:
    import onnx

__all__ = ["find_test_data", "read_test_data"]

_DATA_SET = "test_data_set_*"


def find_test_data(model_path: str | Path) -> Path | None:
    """The folder beside ``model_path`` that holds ``test_data_set_*`` folders, if any."""
    folder = Path(model_path).resolve().parent
    return folder if any(p.is_dir() for p in folder.glob(_DATA_SET)) else None


def _numbered(folder: Path, kind: str) -> list[Path]:
    found = {
        int(m.group(1)): p for p in folder.glob(f"{kind}_*.pb") if (m := re.fullmatch(rf"{kind}_(\d+)\.pb", p.name))
    }
    if sorted(found) != list(range(len(found))):
        raise InputError(
            f"{folder}: {kind}_*.pb files are not numbered 0..{len(found) - 1} ({sorted(found)})",
            "the model zoo layout numbers them input_0.pb, input_1.pb, ...",
        )
    return [found[i] for i in range(len(found))]


def _read_tensor(path: Path) -> tuple[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    tensor = onnx.TensorProto()
    try:
        tensor.ParseFromString(path.read_bytes())
        return tensor.name, numpy_helper.to_array(tensor)
    except Exception as e:
        raise InputError(
            f"{path} is not a serialised ONNX tensor ({first_line(e)})",
            "test data files hold one TensorProto each (sequences and maps are not supported)",
        ) from e


def _named(paths: list[Path], names: list[str], where: Path, kind: str) -> dict[str, np.ndarray]:
    if len(paths) != len(names):
        raise InputError(
            f"{where} holds {len(paths)} {kind} file(s) but the model has {len(names)} {kind}(s) ({', '.join(names)})",
            "the test data must belong to this model",
        )
    out: dict[str, np.ndarray] = {}
    for i, path in enumerate(paths):
        name, array = _read_tensor(path)
        out[name if name in names and name not in out else names[i]] = array
    return out


def read_test_data(folder: str | Path, model: onnx.ModelProto) -> Fixtures:
    """Every ``test_data_set_*`` under ``folder`` as fixtures (one case per data set, named after it)."""
    from ..onnxio import graph_inputs

    folder = Path(folder)
    sets = sorted((p for p in folder.glob(_DATA_SET) if p.is_dir()), key=lambda p: p.name)
    if not sets:
        raise InputError(f"{folder} holds no test_data_set_* folder", "give the folder the model zoo ships")
    input_names = [i.name for i in graph_inputs(model)]
    output_names = [o.name for o in model.graph.output]
    inputs, outputs = [], []
    for data_set in sets:
        inputs.append((data_set.name, _named(_numbered(data_set, "input"), input_names, data_set, "input")))
        outputs.append((data_set.name, _named(_numbered(data_set, "output"), output_names, data_set, "output")))
    return Fixtures(folder, tuple(inputs), tuple(outputs), {"layout": "onnx model zoo test_data_set_*"})
