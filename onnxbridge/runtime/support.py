"""Can the installed ONNX Runtime load a model's IR version and opsets? Asked of ONNX Runtime itself.

A tiny Identity model stamped with the model's IR version and standard-domain opsets is loaded on
CPU (milliseconds, whatever the model's size); ONNX Runtime's refusal names the newest version it
supports, which goes into a message that says both.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from ..options.providers import CPU

if TYPE_CHECKING:
    import onnx

__all__ = ["identity_probe", "runtime_problems", "check_runtime_support"]

_STANDARD = ("", "ai.onnx", "ai.onnx.ml")
_IR = re.compile(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)")
_OPSET = re.compile(r"official support for domain (\S+) is till opset (\d+)")


def identity_probe(opsets: dict[str, int], ir_version: int | None = None) -> bytes:
    """A one-Identity model (float[1] -> float[1]) importing ``opsets`` (domain -> version), serialised;
    stamped with ``ir_version`` when given, else the newest onnx writes, capped at 10."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    probe = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
    probe.ir_version = min(probe.ir_version, 10) if ir_version is None else ir_version
    data: bytes = probe.SerializeToString()
    return data


def runtime_problems(model: onnx.ModelProto) -> list[str]:
    """What in ``model``'s versions the installed onnxruntime refuses, one line each (empty: none)."""
    import onnxruntime as ort

    opsets = {
        ("" if o.domain == "ai.onnx" else o.domain): o.version for o in model.opset_import if o.domain in _STANDARD
    }
    opsets.setdefault("", 13)
    try:
        ort.InferenceSession(identity_probe(opsets, model.ir_version), providers=[CPU.ort])
    except Exception as e:
        return _explain(str(e), model, ort.__version__)
    return []


def _explain(text: str, model: onnx.ModelProto, version: str) -> list[str]:
    out = []
    ir = _IR.search(text)
    if ir:
        out.append(f"IR version {ir.group(1)} (onnxruntime {version} reads up to {ir.group(2)})")
    opset = _OPSET.search(text)
    if opset:
        domain = opset.group(1).rstrip(".")
        used = next((o.version for o in model.opset_import if (o.domain or "ai.onnx") == domain), None)
        out.append(f"opset {used} of {domain} (onnxruntime {version} supports up to {opset.group(2)})")
    if not out:  # refused for another reason: say it as ONNX Runtime did
        line = next((x.strip() for x in text.splitlines() if x.strip()), text)
        out.append(f"onnxruntime {version} refuses its versions: {line[-300:]}")
    return out


def check_runtime_support(model: onnx.ModelProto, path: str | Path) -> None:
    """Raise ``InputError`` (exit 2) when the installed onnxruntime cannot load ``model``'s versions."""
    problems = runtime_problems(model)
    if problems:
        import onnxruntime as ort

        raise InputError(
            f"{path} is newer than the installed onnxruntime {ort.__version__} supports: {'; '.join(problems)}",
            "upgrade onnxruntime (pip install -U onnxruntime), or re-export with an older --opset",
        )
