"""Opset conversion of an existing ONNX model (legacy files up, new files down), and the repairs that
make an old file load in today's tools: an IR version that fits the opset, initializers no longer
listed as graph inputs, and the shapes shape inference can fill in.

``convert_opset`` returns the converted model and an :class:`~onnxbridge.results.UpgradeResult`
saying what changed; parity is the caller's business (``api.upgrade`` checks it against the original
model on ONNX Runtime and against expected outputs shipped with the model).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .._util import first_line
from ..errors import ConversionError
from ..onnxio import graph_inputs, main_opset, node_count, op_counts
from ..results import UpgradeResult

if TYPE_CHECKING:
    import onnx

__all__ = ["convert_opset", "main_opset"]

# IR versions that brought a feature a model may use (onnx/IR.md): model-local functions came with IR 8.
_FUNCTIONS_IR = 8


def _since(op: str, opset: int) -> int | None:
    """The version of ``op``'s definition in force at ``opset`` (None when it does not exist there)."""
    from onnx import defs

    try:
        return defs.get_schema(op, opset).since_version
    except Exception:  # SchemaError: the op does not exist at that opset
        return None


def _ir_version(model: onnx.ModelProto, upgrading: bool) -> int:
    """The IR version the converted model gets: at least what its opsets need; when going down or staying,
    no more than that (so older runtimes load it), model-local functions keeping IR 8."""
    from onnx import helper

    needed = helper.find_min_ir_version_for(list(model.opset_import), ignore_unknown=True)
    if model.functions:
        needed = max(needed, _FUNCTIONS_IR)
    return max(model.ir_version, needed) if upgrading else needed


def _drop_initializer_inputs(model: onnx.ModelProto) -> int:
    """IR 3 listed every weight as a graph input; from IR 4 on they are constants. Returns how many."""
    keep = graph_inputs(model)
    dropped = len(model.graph.input) - len(keep)
    if dropped:
        del model.graph.input[:]
        model.graph.input.extend(keep)
        model.ir_version = max(model.ir_version, 4)  # IR 3 requires every initializer to be an input
    return dropped


def _shapeless_outputs(model: onnx.ModelProto) -> set[str]:
    return {o.name for o in model.graph.output if not o.type.tensor_type.HasField("shape")}


def _fill_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Shape inference, and the inferred type of every graph output that declared none."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    except Exception:  # inference is a repair, not a requirement
        return model
    known = {v.name: v for v in inferred.graph.value_info}
    for out in inferred.graph.output:
        if not out.type.tensor_type.HasField("shape") and out.name in known:
            out.type.CopyFrom(known[out.name].type)
    return inferred


def convert_opset(
    model: onnx.ModelProto, opset: int, *, keep_initializer_inputs: bool = False
) -> tuple[onnx.ModelProto, UpgradeResult]:
    """``model`` converted to ``opset`` (up or down) by ONNX's version converter, with the repairs
    above; ``ConversionError`` (exit 3) when the converter has no adapter for one of its ops."""
    import onnx
    from onnx import version_converter

    t0 = time.perf_counter()
    before, ir_before, hist_before = main_opset(model), model.ir_version, op_counts(model)
    nodes_before = node_count(model)
    work = onnx.ModelProto()
    work.CopyFrom(model)
    dropped = 0 if keep_initializer_inputs else _drop_initializer_inputs(work)
    notes: list[str] = []
    if before != opset:
        try:
            work = version_converter.convert_version(work, opset)
        except Exception as e:
            raise ConversionError(
                f"ONNX's version converter cannot take this model from opset {before} to {opset}: "
                f"{first_line(e, with_type=False)}",
                "try a nearer --opset (the converter has no adapter for every op in every direction)",
            ) from e
    else:
        notes.append(f"the model is at opset {opset} already; only the repairs were applied")
    work.ir_version = _ir_version(work, opset > before)
    work = _fill_shapes(work)
    shapes = len(_shapeless_outputs(model) - _shapeless_outputs(work))
    try:
        onnx.checker.check_model(work)
    except Exception as e:
        raise ConversionError(
            f"the model converted to opset {opset} is not valid ONNX: {first_line(e, with_type=False)}",
            "try another --opset",
        ) from e
    hist_after = op_counts(work)
    versions = {
        op: (_since(op, before), _since(op, opset))
        for op in sorted(hist_after)
        if "::" not in op and _since(op, before) != _since(op, opset)
    }
    return work, UpgradeResult(
        opset_before=before,
        opset_after=main_opset(work),
        ir_before=ir_before,
        ir_after=work.ir_version,
        nodes_before=nodes_before,
        nodes_after=node_count(work),
        ops_removed=dict(sorted((hist_before - hist_after).items())),
        ops_added=dict(sorted((hist_after - hist_before).items())),
        op_versions=versions,
        initializer_inputs_removed=dropped,
        shapes_added=shapes,
        seconds=time.perf_counter() - t0,
        notes=tuple(notes),
    )
