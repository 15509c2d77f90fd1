"""The ``keras-torch/dynamo`` route: Keras 3 on the torch backend, exported by torch.export.

Keras fixes its backend when it is first imported, so the export runs in a child process
(``python -m onnxbridge.converters.keras_torch WORKDIR`` with ``KERAS_BACKEND=torch``). Data
travels by files in a private temporary folder:

- parent -> child: ``request.json`` (where the model comes from, input specs, output names,
  opset), ``example.npz`` (the export-size inputs), ``model.weights.h5`` for Python sources;
- child -> parent: ``model.onnx`` and ``result.json`` (``ok``, or ``error`` and ``failing_op``).

A ``.keras`` file is re-loaded by the child (``safe_mode`` unless ``--trust-model``); a Python
source is re-imported and rebuilt, then given the parent's weights, so custom layers work too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .axes import name_dynamic_axes
from .base import ExportedModel, ExportRequest, SourceModel

if TYPE_CHECKING:
    from .keras import KerasState

__all__ = ["KerasTorchRoute", "ChildRouteError", "CHILD_TIMEOUT_S"]

CHILD_TIMEOUT_S = 900


class ChildRouteError(RuntimeError):
    """The child process failed; ``failing_op`` is what it blamed, when it could tell."""

    def __init__(self, message: str, failing_op: str | None = None) -> None:
        super().__init__(message)
        self.failing_op = failing_op


class KerasTorchRoute:
    """Re-load the Keras model with the torch backend in a child process; torch.export + dynamo."""

    name = "keras-torch/dynamo"

    def __init__(self, timeout_s: float = CHILD_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s

    def export(self, loaded: SourceModel[KerasState], request: ExportRequest) -> ExportedModel:
        import numpy as np
        import onnx

        with tempfile.TemporaryDirectory(prefix="onnxbridge-keras-torch-") as tmp:
            work = Path(tmp)
            source: dict[str, Any] = {"kind": loaded.state.origin, "trust": loaded.state.trust}
            if source["kind"] == "keras-file":
                source["path"] = loaded.state.path
            elif source["kind"] == "python":
                source["ref"] = loaded.source
                source["import_root"] = _import_root(loaded.source)
                source["weights"] = str(work / "model.weights.h5")
                loaded.model.save_weights(source["weights"])
            else:
                raise RuntimeError(f"the torch backend cannot load a {source['kind']} model")
            request_doc = {
                "source": source,
                "inputs": [{"name": s.name, "dims": list(s.dims), "dtype": s.dtype} for s in loaded.specs],
                "output_names": list(loaded.state.output_names),
                "opset": request.opset,
            }
            (work / "request.json").write_text(json.dumps(request_doc))
            arrays = {s.name: loaded.example[s.name] for s in loaded.specs}
            np.savez(work / "example.npz", **arrays)  # type: ignore[arg-type]  # mypy matches **dict to allow_pickle: bool
            self._run_child(work)
            model = onnx.load(str(work / "model.onnx"))
        names = tuple(o.name for o in model.graph.output)
        notes = name_dynamic_axes(model, loaded.specs)
        return ExportedModel(model, names, notes)

    def _run_child(self, work: Path) -> None:
        import onnxbridge

        env = dict(os.environ)
        env["KERAS_BACKEND"] = "torch"
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        root = str(Path(onnxbridge.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "onnxbridge.converters.keras_torch", str(work)],
                env=env,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
            )
        except subprocess.TimeoutExpired as e:
            raise ChildRouteError(f"the Keras-on-torch export took over {self.timeout_s:.0f} s and was stopped") from e
        result_file = work / "result.json"
        if result_file.exists():
            result = json.loads(result_file.read_text())
            if result.get("ok") and (work / "model.onnx").exists():
                return
            raise ChildRouteError(result.get("error") or "the child process failed", result.get("failing_op"))
        tail = [line for line in (proc.stderr or "").strip().splitlines() if line.strip()][-1:]
        raise ChildRouteError(
            f"the Keras-on-torch child process exited with code {proc.returncode}"
            + (f": {tail[0][:300]}" if tail else "")
        )


def _import_root(source: str) -> str | None:
    """The folder this process imported a ``package.module:NAME`` source's top package from (None for
    ``file.py:NAME``): the child imports the same module wherever it runs (the gate imports a project's
    modules from the project root, whatever the working directory)."""
    module_name = source.partition(":")[0]
    module = None if module_name.endswith(".py") else sys.modules.get(module_name.split(".")[0])
    if module is None:
        return None
    folders = list(getattr(module, "__path__", None) or ())  # a package (a namespace package has no __file__)
    if folders:
        return str(Path(folders[0]).resolve().parent)
    file = getattr(module, "__file__", None)
    return str(Path(file).resolve().parent) if file else None


# ------------------------------------------------------------------------------ child side
def _load_model(source: dict[str, Any], example: list[Any]) -> Any:
    import contextlib

    import keras

    if source["kind"] == "keras-file":
        return keras.saving.load_model(source["path"], compile=False, safe_mode=not source["trust"])
    from ..sources import load_python_object, on_sys_path, parse_source, resolve_factory
    from .tf_runner import keras_call

    root = source.get("import_root")
    with on_sys_path(Path(root)) if root else contextlib.nullcontext():
        model, _ = resolve_factory(load_python_object(parse_source(source["ref"])), source["ref"])
    keras_call(model, len(example))(*example)  # build
    model.load_weights(source["weights"])
    return model


def _child_export(work: Path) -> None:
    import keras
    import numpy as np
    import onnx
    import torch

    from .._util import quiet
    from .tf_runner import keras_call

    if keras.backend.backend() != "torch":
        raise RuntimeError(f"the child runs Keras on {keras.backend.backend()}, not torch")
    req = json.loads((work / "request.json").read_text())
    names = [i["name"] for i in req["inputs"]]
    with np.load(work / "example.npz", allow_pickle=False) as data:
        example = [torch.from_numpy(np.ascontiguousarray(data[n])) for n in names]
    model = _load_model(req["source"], example)
    call = keras_call(model, len(example))

    class Flat(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner  # registers the Keras layers' torch parameters

        def forward(self, *xs: Any) -> Any:
            return tuple(keras.tree.flatten(call(*xs)))

    wrapper = Flat(model).eval()
    dynamic = tuple(
        {j: torch.export.Dim.DYNAMIC for j, d in enumerate(i["dims"]) if isinstance(d, str)} or None
        for i in req["inputs"]
    )
    with quiet(), torch.no_grad():
        # forward(*xs): the varargs tuple is the one parameter dynamic_shapes describes
        ep = torch.export.export(
            wrapper, tuple(example), dynamic_shapes=(dynamic,) if any(dynamic) else None, strict=False
        )
        program = torch.onnx.export(
            ep,
            dynamo=True,
            opset_version=req["opset"],
            input_names=names,
            output_names=req["output_names"],
            verbose=False,
        )
        assert program is not None  # torch types the TorchScript path's None; dynamo=True returns the program
    onnx.save(program.model_proto, str(work / "model.onnx"))


def _error_line(e: BaseException) -> str:
    """The first line of the error; for Keras' "Exception encountered when calling X" also the cause."""
    from .._util import first_line

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))  # Keras and torch.onnx colour their messages
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Exception encountered when calling"):
        return f"{type(e).__name__}: {lines[0]} {lines[1][:300]}"
    return re.sub(r"\x1b\[[0-9;]*m", "", first_line(e))


def main(argv: list[str]) -> int:
    """Child entry point: export, and always leave ``result.json`` behind."""
    work = Path(argv[0])
    try:
        _child_export(work)
    except BaseException as e:  # noqa: BLE001 - report every failure to the parent
        from .torch_utils import failing_op

        error = _error_line(e)
        (work / "result.json").write_text(json.dumps({"ok": False, "error": error, "failing_op": failing_op(e)}))
        return 1
    (work / "result.json").write_text(json.dumps({"ok": True}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
