"""Exports shared by the localisation tests (made once per test process)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

NET = Path(__file__).resolve().parent / "torch_net.py"


def src(name: str) -> str:
    return f"{NET}:{name}"


def scale_module_weight(model: onnx.ModelProto, module: str, factor: float) -> str:
    """Scale the weight of the MatMul / Gemm that ``module`` became (found through the node metadata
    or TorchScript scopes), in place; returns the initializer's name."""
    from onnxbridge.localize.origins import origins

    table = origins(model)
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        org = table.get(node.name)
        if org is None or org.module.qualname != module or node.op_type not in ("MatMul", "Gemm"):
            continue
        name = next(i for i in node.input[1:] if i in inits)
        inits[name].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(inits[name]) * np.float32(factor), name))
        return name
    raise LookupError(f"no weight of {module}")


def made_once(tmp_path_factory, name: str, make) -> Path:
    """``make(folder)`` run once per test session, even under pytest-xdist: the first worker makes the
    files in a folder every worker shares (under a file lock), the others reuse them."""
    import os

    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker's folder sits in the session's own folder
        base = base.parent
    folder = base / f"localize-{name}"
    with FileLock(str(folder) + ".lock"):
        if not (folder / "done").is_file():
            folder.mkdir(exist_ok=True)
            make(folder)
            (folder / "done").touch()
    return folder


@pytest.fixture(scope="session")
def exports(tmp_path_factory) -> dict[str, Path]:
    """The clean net exported through onnxbridge convert by each route (test_torch checks the numbers)."""
    routes = {"clean": "torch.export/dynamo", "ts": "torchscript"}

    def make(folder: Path) -> None:
        from onnxbridge import api

        for name, route in routes.items():
            report = api.convert(
                src("clean"), folder / f"{name}.onnx", inputs=["x:batch,16"], routes=[route], validate=False
            )
            assert report.conversion.route == route

    folder = made_once(tmp_path_factory, "torch", make)
    return {name: folder / f"{name}.onnx" for name in routes}
