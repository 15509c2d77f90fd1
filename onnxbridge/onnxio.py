"""ONNX files in and out, treating every file as hostile.

Files are opened through ``onnx.load`` (which refuses external-data paths that leave the model's
folder and symlinked data), checked, and only then handed to other tools as bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from ._util import first_line
from .errors import InputError, UnsafeInputError
from .fsutil import atomic_write_bytes

if TYPE_CHECKING:
    import onnx

    from .results import ModelInfo

__all__ = [
    "load_onnx", "save_onnx", "model_info", "TWO_GB", "node_count", "graph_inputs", "value_infos",
    "input_specs",
]

TWO_GB = 2**31 - 1


def load_onnx(path: str | Path, *, check: bool = True) -> onnx.ModelProto:
    """Load and check an ONNX file; every failure is an ``InputError`` naming the file."""
    import onnx

    path = Path(path)
    if not path.exists():
        raise InputError(f"ONNX file {path} does not exist", "check the path")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not an ONNX file", "give the path of a .onnx file")
    try:
        model = onnx.load(str(path))
    except onnx.checker.ValidationError as e:  # external data outside the folder, symlinks...
        raise UnsafeInputError(
            f"{path}: refused external data: {first_line(e, with_type=False)}",
            "external data must be a regular file inside the model's folder",
        ) from e
    except Exception as e:  # DecodeError, truncated files, garbage
        raise InputError(
            f"{path} is not a readable ONNX model ({first_line(e)})",
            "the file may be truncated or not ONNX at all; re-export it",
        ) from e
    if check:
        if not model.graph.node and not model.graph.output:
            raise InputError(f"{path} holds no ONNX graph (empty or not a model)", "re-export the model")
        try:
            if model.ByteSize() > TWO_GB:
                onnx.checker.check_model(str(path))
            else:
                onnx.checker.check_model(model)
        except Exception as e:
            raise InputError(f"{path} is not a valid ONNX model: {first_line(e, with_type=False)}", "re-export the model") from e
    return model


def save_onnx(model: onnx.ModelProto, path: str | Path) -> Path:
    """Write ``model`` atomically; models over 2 GB get one external-data file beside them."""
    import onnx

    path = Path(path)
    if model.ByteSize() < TWO_GB:
        return atomic_write_bytes(path, model.SerializeToString())
    location = path.name + ".data"
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        onnx.save_model(model, str(tmpdir / path.name), save_as_external_data=True, location=location)
        os.replace(tmpdir / location, path.parent / location)
        os.replace(tmpdir / path.name, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return path


def node_count(model: onnx.ModelProto) -> int:
    """Nodes in the main graph and every subgraph."""
    import onnx

    def count(graph: onnx.GraphProto) -> int:
        n = 0
        for node in graph.node:
            n += 1
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    n += count(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    n += sum(count(g) for g in attr.graphs)
        return n

    return count(model.graph)


def graph_inputs(model: onnx.ModelProto) -> list:
    """The graph inputs a caller feeds: initializers listed as inputs (older exporters) left out."""
    init = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in init]


def value_infos(values) -> list[dict]:
    """name / dims (int, str or None) / dtype of graph inputs or outputs."""
    import onnx

    out = []
    for v in values:
        t = v.type.tensor_type
        dims: list[int | str | None] = []
        if t.HasField("shape"):
            for d in t.shape.dim:
                dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name if t.elem_type else "unknown"
        out.append({"name": v.name, "dims": dims, "dtype": dtype})
    return out


def model_info(path: str | Path) -> ModelInfo:
    """Load ``path`` safely and describe it."""
    import numpy as np
    import onnx

    from .results import ModelInfo

    model = load_onnx(path)
    params = 0
    nbytes = 0
    for init in model.graph.initializer:
        n = int(np.prod(init.dims)) if init.dims else 1
        params += n
        nbytes += n * onnx.helper.tensor_dtype_to_np_dtype(init.data_type).itemsize
    hist = Counter(
        (f"{n.domain}::{n.op_type}" if n.domain not in ("", "ai.onnx") else n.op_type) for n in model.graph.node
    )
    return ModelInfo(
        path=str(path),
        size_bytes=Path(path).stat().st_size,
        ir_version=model.ir_version,
        opsets={(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        inputs=value_infos(graph_inputs(model)),
        outputs=value_infos(model.graph.output),
        op_histogram=dict(hist.most_common()),
        nodes=node_count(model),
        parameters=params,
        initializer_bytes=nbytes,
    )



def input_specs(model: onnx.ModelProto):
    """TensorSpecs of the graph inputs; unnamed unknown dims get a name of their own."""
    from .specs import TensorSpec

    specs = []
    for info in value_infos(graph_inputs(model)):
        dims = tuple(
            d if isinstance(d, int) and d > 0 else (d if isinstance(d, str) else f"{info['name']}_dim{i}")
            for i, d in enumerate(info["dims"])
        )
        specs.append(TensorSpec(info["name"], dims, info["dtype"]))
    return tuple(specs)
