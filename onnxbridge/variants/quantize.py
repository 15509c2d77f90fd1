"""int8 dynamic, int8 static (QDQ) and int4 weight-only, through ``onnxruntime.quantization``.

- ``quantize_dynamic``: weights int8 ahead of time, activations quantised per run (uint8). Conv is left
  out by default: ConvInteger has no fast CPU kernel (ResNet-50 ran at 0.2x fp32, measured).
- ``quant_pre_process`` (shape inference, BatchNorm folding) then ``quantize_static`` in QDQ format,
  uint8 activations and int8 per-channel weights (the docstring's advice for x86 with VNNI), calibrated
  on real or generated cases with MinMax, Entropy or Percentile.
- ``MatMulNBitsQuantizer``: 4-bit block-wise weights for constant-B MatMuls (``MatMulNBits``) and
  embedding Gathers (``GatherBlockQuantized``; the size target needs them). It edits the ModelProto it
  is given in place, so it gets a copy. ``weights_as_matmul`` first rewrites what it cannot see:
  ``Gemm`` with a constant weight (GPT-2's Conv1D through torch.export) and ``MatMul(x, Transpose(W))``
  (a tied LM head).
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._graph import drop_initializer_value_info, op_counts, quiet_tools
from .calibration import feeds_reader

__all__ = ["QUANT_OPS", "quantized_ops", "int8_dynamic", "int8_static", "weights_as_matmul", "int4_weight_only"]

QUANT_OPS = (
    "MatMulInteger",
    "ConvInteger",
    "DynamicQuantizeLinear",
    "DynamicQuantizeMatMul",
    "QAttention",
    "QuantizeLinear",
    "DequantizeLinear",
    "QLinearConv",
    "QLinearMatMul",
    "MatMulNBits",
    "GatherBlockQuantized",
    "QGemm",
    "QLinearAdd",
)
INT8_DYNAMIC_OPS = ("MatMul", "Attention", "Gather", "EmbedLayerNormalization")


def quantized_ops(model) -> dict[str, int]:
    """Counts of the quantised / QDQ op types in ``model``."""
    return {k: v for k, v in sorted(op_counts(model).items()) if k.split("::")[-1] in QUANT_OPS}


def int8_dynamic(model, output: Path, *, per_channel: bool = False) -> dict[str, Any]:
    """Write the dynamic int8 model of ``model`` to ``output``; returns its settings."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with quiet_tools():
        quantize_dynamic(
            drop_initializer_value_info(model),
            str(output),
            op_types_to_quantize=list(INT8_DYNAMIC_OPS),
            per_channel=per_channel,
            reduce_range=False,
            weight_type=QuantType.QInt8,
        )
    return {
        "op_types": list(INT8_DYNAMIC_OPS),
        "per_channel": per_channel,
        "reduce_range": False,
        "weight_type": "int8",
        "activations": "uint8, quantised per run",
    }


def int8_static(
    model,
    output: Path,
    cases: Sequence[Mapping[str, np.ndarray]],
    *,
    method: str = "minmax",
    per_channel: bool = True,
    percentile: float = 99.999,
) -> dict[str, Any]:
    """Write the static int8 (QDQ) model of ``model``, calibrated on ``cases`` with ``method``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calibrate = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }[method]
    extra = {"CalibPercentile": percentile} if method == "percentile" else {}
    with tempfile.TemporaryDirectory(prefix="onnxbridge-int8-") as tmp, quiet_tools():
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(drop_initializer_value_info(model), str(pre))
        quantize_static(
            str(pre),
            str(output),
            feeds_reader(cases),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=calibrate,
            extra_options=extra,
        )
    return {
        "format": "QDQ",
        "calibration": method,
        **({"percentile": percentile} if extra else {}),
        "calibration_cases": len(cases),
        "per_channel": per_channel,
        "activations": "uint8",
        "weights": "int8",
        "preprocess": "quant_pre_process (shape inference, BatchNorm folding)",
    }


def _attr(node, name: str, default: Any) -> Any:
    from onnx import helper

    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _plain_gemm(node, init: Mapping[str, Any]) -> bool:
    return (
        node.op_type == "Gemm"
        and node.domain in ("", "ai.onnx")
        and node.input[1] in init
        and len(init[node.input[1]].dims) == 2
        and _attr(node, "alpha", 1.0) == 1.0
        and _attr(node, "beta", 1.0) == 1.0
        and not _attr(node, "transA", 0)
    )


def weights_as_matmul(model):
    """A copy where ``Gemm(A, W, C)`` (constant 2-D W, alpha = beta = 1, no transA) is ``MatMul + Add`` and
    ``MatMul(A, Transpose(W))`` with a constant W reads ``W.T``; returns ``(model, {"gemm": n, "transpose": n})``.
    A tied table is then stored twice, until int4 shrinks both copies."""
    from onnx import helper, numpy_helper

    m = copy.deepcopy(model)
    g = m.graph
    init = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    counts = {"gemm": 0, "transpose": 0}
    transposed: dict[str, str] = {}

    def transposed_name(src: str) -> str:
        if src not in transposed:
            transposed[src] = f"{src}__T"
            g.initializer.append(
                numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(init[src]).T), transposed[src])
            )
        return transposed[src]

    nodes = []
    for n in g.node:
        if _plain_gemm(n, init):
            w = transposed_name(n.input[1]) if _attr(n, "transB", 0) else n.input[1]
            bias = len(n.input) > 2 and n.input[2]
            out = n.output[0] + "__mm" if bias else n.output[0]
            nodes.append(helper.make_node("MatMul", [n.input[0], w], [out], name=n.name + "__matmul"))
            if bias:
                nodes.append(helper.make_node("Add", [out, n.input[2]], [n.output[0]], name=n.name + "__bias"))
            counts["gemm"] += 1
            continue
        t = producer.get(n.input[1]) if n.op_type == "MatMul" and len(n.input) > 1 else None
        if (
            t is not None
            and t.op_type == "Transpose"
            and t.input[0] in init
            and len(init[t.input[0]].dims) == 2
            and list(_attr(t, "perm", [1, 0])) == [1, 0]
        ):
            n.input[1] = transposed_name(t.input[0])
            counts["transpose"] += 1
        nodes.append(n)
    used = {i for n in nodes for i in n.input} | {o.name for o in g.output}
    nodes = [n for n in nodes if n.op_type != "Transpose" or any(o in used for o in n.output)]
    used = {i for n in nodes for i in n.input} | {o.name for o in g.output}
    keep = [t for t in g.initializer if t.name in used]
    del g.node[:], g.initializer[:]
    g.node.extend(nodes)
    g.initializer.extend(keep)
    return m, counts


def int4_weight_only(
    model, *, block_size: int = 32, symmetric: bool = False, accuracy_level: int = 4, quantize_gather: bool = True
):
    """4-bit block-wise weights; returns ``(model, settings)``. ``accuracy_level`` 4 lets the CPU kernel
    compute in int8 (fast on VNNI, no accuracy cost measured); asymmetric blocks were slightly more accurate."""
    from onnxruntime.quantization import matmul_nbits_quantizer as mnq

    op_types = ("MatMul", "Gather") if quantize_gather else ("MatMul",)
    with quiet_tools():
        q = mnq.MatMulNBitsQuantizer(
            copy.deepcopy(model),
            bits=4,
            block_size=block_size,
            is_symmetric=symmetric,
            accuracy_level=accuracy_level,
            op_types_to_quantize=op_types,
            quant_axes=(("MatMul", 0), ("Gather", 1)),
        )
        q.process()
    return q.model.model, {
        "bits": 4,
        "block_size": block_size,
        "symmetric": symmetric,
        "accuracy_level": accuracy_level,
        "op_types": list(op_types),
        "algorithm": "round to nearest",
    }
