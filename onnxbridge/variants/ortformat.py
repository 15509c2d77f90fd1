"""The ORT format (``.ort``) for ONNX Runtime Mobile, and ONNX Runtime's mobile usability check, as data.

``onnxruntime.tools.convert_onnx_models_to_ort`` is a CLI wrapper that prints and names its outputs
itself; what it does per model (its Fixed optimisation style) is a session with two config entries, so
``to_ort`` does exactly that into the path we choose::

    so.optimized_model_filepath = "model.ort"
    so.add_session_config_entry("session.save_model_format", "ORT")
    so.add_session_config_entry("session.qdqisint8allowed", "1" for arm, else "0")
    InferenceSession(model, so, disabled_optimizers=["NchwcTransformer"] unless amd64)

``onnxruntime.tools.check_onnx_model_mobile_usability`` only logs; its pieces (``usability_checker``'s
``check_nnapi_partitions`` / ``check_coreml_partitions`` / ``check_shapes``) are called here and their
answers returned.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..options.providers import CPU
from ._graph import quiet_tools

__all__ = ["to_ort", "mobile_usability"]


def to_ort(model_path: Path, output: Path, *, target_platform: str = "arm") -> dict[str, Any]:
    """Write ``output`` (.ort) from the ONNX file, optimised at level ``all`` for ``target_platform``."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.optimized_model_filepath = str(output)
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    so.add_session_config_entry("session.save_model_format", "ORT")
    so.add_session_config_entry("session.qdqisint8allowed", "1" if target_platform == "arm" else "0")
    disabled = None if target_platform == "amd64" else ["NchwcTransformer"]
    ort.InferenceSession(str(model_path), so, providers=[CPU.ort], disabled_optimizers=disabled)
    return {"target_platform": target_platform, "optimization": "all (fixed)"}


def mobile_usability(model_path: Path) -> dict[str, Any]:
    """NNAPI and CoreML partitioning of the model (optimised to BASIC first, as the CLI does): per
    execution provider its suitability (YES / MAYBE / NO), supported nodes, partitions, unsupported ops,
    and its suitability with fixed input shapes when the model has dynamic ones; plus a recommendation."""
    from onnxruntime.tools.mobile_helpers import usability_checker as uc
    from onnxruntime.tools.onnx_model_utils import ModelProtoWithShapeInfo, optimize_model

    checks = (
        ("NNAPI", lambda m, fixed: uc.check_nnapi_partitions(m, fixed)),
        (
            "CoreML NeuralNetwork",
            lambda m, fixed: uc.check_coreml_partitions(m, fixed, "coreml_supported_neuralnetwork_ops.md"),
        ),
        (
            "CoreML MLProgram",
            lambda m, fixed: uc.check_coreml_partitions(m, fixed, "coreml_supported_mlprogram_ops.md"),
        ),
    )
    with tempfile.TemporaryDirectory(prefix="onnxbridge-mobile-") as tmp, quiet_tools():
        opt = Path(tmp) / "model.onnx"
        optimize_model(Path(model_path).resolve(), opt, use_external_initializers=True)
        model = ModelProtoWithShapeInfo(opt).model_with_shape_info
        dynamic, _ = uc.check_shapes(model.graph)
        eps = []
        for name, check in checks:
            info = check(model, True)
            suit = info.suitability()
            fixed = check(model, False).suitability().name if dynamic and suit.name != "YES" else None
            eps.append(
                {
                    "ep": name,
                    "suitability": suit.name,
                    "nodes": info.num_nodes,
                    "supported_nodes": info.num_supported_nodes,
                    "partitions": info.num_partitions,
                    "unsupported_ops": sorted(info.unsupported_ops),
                    "with_fixed_shapes": fixed,
                }
            )
    usable = any(e["suitability"] != "NO" for e in eps)
    rec = (
        "compare NNAPI (Android) / CoreML (iOS) against the CPU provider"
        if usable
        else "use the CPU provider (NNAPI / CoreML would split the graph)"
    )
    if dynamic and any(e["suitability"] == "NO" and e["with_fixed_shapes"] not in (None, "NO") for e in eps):
        rec += "; fixing the input shapes (python -m onnxruntime.tools.make_dynamic_shape_fixed) would help"
    return {"dynamic_inputs": [i.name for i in dynamic], "eps": eps, "recommendation": rec}
