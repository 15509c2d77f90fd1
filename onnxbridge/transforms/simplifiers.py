"""Simplifier choice: onnxsim, onnxslim and the onnxscript optimizer (each where installed), parity-checked.

``--simplifier onnxsim`` (the default) is ``simplify.simplify_model``. ``--simplifier auto`` runs every
installed tool on a copy of the model and keeps, among the results that ran and did not grow the weights
(initializers + Constants: constant folding that materialises a Transpose / Tile / Expand of a weight
is the known trap; simplify's one growth rule, ``simplify.grows``), the one with the fewest nodes whose parity with the input holds; ties go to the
smaller weights, then to the order onnxsim, onnxslim, onnxscript. Only the candidates that could win are
parity-checked, best first, so a run costs one check when the best candidate is good. Measured on
torch.export graphs: onnxsim grows them (MatMul + Add -> Gemm on 3-D activations adds Shape / Slice /
Concat / Reshape chains: BERT-base 446 -> 567 nodes) and folds a tied LM head's Transpose (+154 MB on
GPT-2 small); onnxslim wins on TorchScript graphs; the onnxscript optimizer never grows the weights.
The onnxsim candidate is run as ``simplify_model`` runs it (large constants left unfolded when folding
everything would grow the weights). A model whose weights are in external data takes simplify's
onnx-ir path whatever ``--simplifier`` says.
Total file size is not the criterion: shape inference adds value_info and dropping an exporter's node
metadata shrinks files without folding anything.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._util import first_line
from ..localize.metadata import carry_metadata
from ..onnxio import node_count, op_counts
from ..onnxio import weight_bytes as initializer_bytes
from ..results import ParityReport, SimplifierCandidate, SimplifyResult
from .simplify import fold, grows, simplify_model

if TYPE_CHECKING:
    import onnx

__all__ = ["TOOLS", "installed", "op_counts", "op_diff", "weight_bytes", "choose_simplifier", "simplify_with"]

Check = Callable[[Any], ParityReport]


def _onnxsim(model):
    """onnxsim as ``simplify_model`` runs it (``simplify.fold``): constants over ``LARGE_CONSTANT`` left
    unfolded when folding everything would grow the weights."""
    return fold(model)[0]


def _onnxslim(model):
    import onnxslim

    return onnxslim.slim(copy.deepcopy(model))  # it freezes the proto it is given


def _onnxscript(model):
    import onnxscript.optimizer

    return onnxscript.optimizer.optimize(copy.deepcopy(model))


# tool -> (module that must be installed, call)
TOOLS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "onnxsim": ("onnxsim", _onnxsim),
    "onnxslim": ("onnxslim", _onnxslim),
    "onnxscript": ("onnxscript", _onnxscript),
}


def installed() -> tuple[str, ...]:
    """The simplifiers importable here, in preference order."""
    return tuple(t for t, (module, _) in TOOLS.items() if importlib.util.find_spec(module) is not None)


def op_diff(before, after) -> dict[str, int]:
    """Op type -> change in count (changed ops only, sorted by op)."""
    a, b = op_counts(before), op_counts(after)
    return {k: b[k] - a[k] for k in sorted(set(a) | set(b)) if a[k] != b[k]}


def weight_bytes(model) -> int:
    """Bytes of initializers and Constant tensors (onnxslim folds into Constants)."""
    return initializer_bytes(model) + sum(
        a.t.ByteSize() for n in model.graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"
    )


def _run(tool: str, model) -> tuple[SimplifierCandidate, Any]:
    from .._util import quiet

    t0 = time.perf_counter()
    try:
        with quiet(("", "onnxslim", "onnxscript", "onnx_ir")):
            out = TOOLS[tool][1](model)
    except Exception as e:  # each tool fails its own way; a failure is a result
        return SimplifierCandidate(tool, False, 0, 0, time.perf_counter() - t0, detail=first_line(e)), None
    carry_metadata(model, out)  # onnxslim drops every node's metadata (module scopes, source lines)
    return SimplifierCandidate(
        tool, True, node_count(out), weight_bytes(out), time.perf_counter() - t0, op_diff(model, out)
    ), out


def choose_simplifier(
    model: onnx.ModelProto, check: Check | None, tools: tuple[str, ...] | None = None
) -> tuple[onnx.ModelProto, SimplifyResult]:
    """Run ``tools`` (default: every installed one) and keep the best result that keeps parity."""
    t0 = time.perf_counter()
    before, w0 = node_count(model), weight_bytes(model)
    runs = [_run(t, model) for t in (tools or installed())]
    order = list(TOOLS)
    ranked = sorted(
        (i for i, (c, _) in enumerate(runs) if c.ok and not grows(w0, c.weight_bytes) and c.nodes <= before),
        key=lambda i: (runs[i][0].nodes, runs[i][0].weight_bytes, order.index(runs[i][0].tool)),
    )
    cands = [c for c, _ in runs]
    for i in ranked:
        cand, out = runs[i]
        report, error = _check(check, out)  # a report when the check ran, else an error (or neither: no check)
        held = report is not None and report.passed
        cands[i] = dataclasses.replace(
            cand,
            parity=None if check is None else held,
            detail=error or (report.summary() if report is not None else None),
        )
        if check is None or held:
            why = "; ".join(_rejections(cands, w0, before)) or None
            return out, SimplifyResult(
                True,
                before,
                cand.nodes,
                time.perf_counter() - t0,
                why,
                None if report is None else True,
                None if report is None else report.worst_abs,
                cand.tool,
                cand.op_diff,
                tuple(cands),
            )
    why = "kept the input: " + ("; ".join(_rejections(cands, w0, before)) or "no simplifier is installed")
    return model, SimplifyResult(
        False, before, before, time.perf_counter() - t0, why, None, None, None, {}, tuple(cands)
    )


def _check(check: Check | None, model) -> tuple[ParityReport | None, str | None]:
    if check is None:
        return None, None
    try:
        return check(model), None
    except Exception as e:
        return None, f"did not run: {first_line(e)}"


def _rejections(cands: list[SimplifierCandidate], w0: int, before: int) -> list[str]:
    out = []
    for c in cands:
        if not c.ok:
            out.append(f"{c.tool} failed ({c.detail})")
        elif grows(w0, c.weight_bytes):
            out.append(f"{c.tool} grew the weights {w0 / 1e6:.2f} -> {c.weight_bytes / 1e6:.2f} MB (constant folding)")
        elif c.nodes > before:
            out.append(f"{c.tool} grew the graph ({before} -> {c.nodes} nodes)")
        elif c.parity is False:
            out.append(f"{c.tool} broke parity ({c.detail})")
    return out


def simplify_with(
    model: onnx.ModelProto, check: Check | None, simplifier: str = "onnxsim"
) -> tuple[onnx.ModelProto, SimplifyResult]:
    """``simplifier``: one tool by name (``onnxsim`` is ``simplify.simplify_model``), or ``auto``."""
    from ..errors import UsageError
    from ..options import SIMPLIFIERS

    if simplifier not in SIMPLIFIERS:
        raise UsageError(f"unknown --simplifier {simplifier!r}", f"use one of {', '.join(SIMPLIFIERS)}")
    if simplifier == "onnxsim":
        out, result = simplify_model(model, check)
        return out, dataclasses.replace(
            result, tool="onnxsim" if result.applied else None, op_diff=op_diff(model, out) if result.applied else {}
        )
    tools = None if simplifier == "auto" else (simplifier,)
    if tools and tools[0] not in installed():
        raise UsageError(
            f"--simplifier {simplifier}: {TOOLS[simplifier][0]} is not installed",
            f"pip install {'onnxslim' if simplifier == 'onnxslim' else 'onnxscript'}, or use --simplifier onnxsim",
        )
    return choose_simplifier(model, check, tools)
