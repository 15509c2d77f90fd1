"""Deployment targets and what each loads: a maintained table, and the static check of a model against
it (IR version, opsets and domains, ops). ``onnxbridge inspect --target ort==1.17,ort-web,tensorrt10``.

Sources (keep them with the table when it changes):

- ONNX Runtime: the version matrix of ONNX Runtime's compatibility page ("ONNX Runtime release version |
  ONNX release version | ONNX opset version | ONNX ML opset version | Supported ONNX IR version") and
  its docs/Versioning.md ("all versions support opsets back to 7"). ``ort`` alone is the installed
  ONNX Runtime, which is also *loaded* for a definitive answer.
- ONNX Runtime Web: its wasm backend runs the CPU kernels of the same release (``ort-web`` follows the
  newest ``ort`` row; ``ort-web==1.17`` a given one). The WebGPU / WebGL backends run fewer ops.
- TensorRT: onnx-tensorrt's docs/operators.md. 10.x: "supports operators in the inclusive range of
  opset 9 to opset 20"; unsupported ops from the 8.5 matrix (the newest full matrix read for this
  table) minus LayerNormalization (parsed natively since 8.6). IR 10 is the newest the 10.x parser
  (built on ONNX 1.16) reads; 8.x reads IR 8.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import UsageError
from .results import TargetCheck

if TYPE_CHECKING:
    import onnx

__all__ = ["Target", "TargetCheck", "parse_targets", "check_target", "ORT_RELEASES", "TARGET_NAMES"]

# ONNX Runtime release -> (newest ai.onnx opset, newest IR version) it implements
ORT_RELEASES: dict[str, tuple[int, int]] = {
    "1.10": (15, 8),
    "1.11": (16, 8),
    "1.12": (17, 8),
    "1.13": (17, 8),
    "1.14": (18, 8),
    "1.15": (19, 9),
    "1.16": (19, 9),
    "1.17": (20, 9),
    "1.18": (21, 10),
    "1.19": (21, 10),
    "1.20": (21, 10),
}
_ORT_DOMAINS = ("", "ai.onnx", "ai.onnx.ml", "com.microsoft", "com.microsoft.nchwc", "ai.onnx.preview.training")

_TRT_UNSUPPORTED = frozenset(
    {
        "Bernoulli",
        "BitShift",
        "BlackmanWindow",
        "Compress",
        "ConcatFromSequence",
        "ConvInteger",
        "DFT",
        "Det",
        "DynamicQuantizeLinear",
        "HammingWindow",
        "HannWindow",
        "Hardmax",
        "IsInf",
        "MatMulInteger",
        "MaxRoiPool",
        "MaxUnpool",
        "MelWeightMatrix",
        "Multinomial",
        "NegativeLogLikelihoodLoss",
        "Optional",
        "OptionalGetElement",
        "OptionalHasElement",
        "QLinearConv",
        "QLinearMatMul",
        "STFT",
        "SequenceAt",
        "SequenceConstruct",
        "SequenceEmpty",
        "SequenceErase",
        "SequenceInsert",
        "SequenceLength",
        "SequenceMap",
        "SoftmaxCrossEntropyLoss",
        "SplitToSequence",
        "StringNormalizer",
        "TfIdfVectorizer",
        "Unique",
    }
)
_TRT = {
    "10": (9, 20, 10, "onnx-tensorrt 10.x docs/operators.md"),
    "8": (9, 17, 8, "onnx-tensorrt 8.5 docs/operators.md"),
}

TARGET_NAMES = ("ort", "ort==X.Y", "ort-web", "ort-web==X.Y", "tensorrt10", "tensorrt8")


@dataclass(frozen=True)
class Target:
    """A runtime and what it loads."""

    name: str
    min_opset: int
    max_opset: int
    max_ir: int
    domains: tuple[str, ...] = ("", "ai.onnx")
    unsupported_ops: frozenset[str] = frozenset()
    source: str = ""
    installed: bool = False  # the ONNX Runtime of this environment: loading the model is the final word


def _ort(version: str | None, web: bool) -> Target:
    kind = "ort-web" if web else "ort"
    if version is None:
        if web:
            version = max(ORT_RELEASES, key=lambda v: tuple(map(int, v.split("."))))
        else:
            import onnxruntime

            version = ".".join(onnxruntime.__version__.split(".")[:2])
            row = ORT_RELEASES.get(version)
            from onnx import IR_VERSION
            from onnx.defs import onnx_opset_version

            opset, ir = row or (onnx_opset_version(), IR_VERSION)
            return Target(
                f"ort ({onnxruntime.__version__}, installed)",
                7,
                opset,
                ir,
                _ORT_DOMAINS,
                source="the installed ONNX Runtime (the model is loaded)",
                installed=True,
            )
    short = ".".join(version.split(".")[:2])
    if short not in ORT_RELEASES:
        raise UsageError(
            f"--target {kind}=={version}: no table entry for ONNX Runtime {version}",
            f"known: {', '.join(ORT_RELEASES)}; `ort` alone checks the installed one",
        )
    opset, ir = ORT_RELEASES[short]
    what = "ONNX Runtime Web (wasm)" if web else "ONNX Runtime"
    return Target(f"{kind}=={short}", 7, opset, ir, _ORT_DOMAINS, source=f"{what} {short}: compatibility matrix")


def _tensorrt(major: str) -> Target:
    if major not in _TRT:
        raise UsageError(
            f"--target tensorrt{major}: no table entry", f"known: {', '.join('tensorrt' + m for m in _TRT)}"
        )
    lo, hi, ir, source = _TRT[major]
    unsupported = _TRT_UNSUPPORTED if major == "10" else _TRT_UNSUPPORTED | {"LayerNormalization"}
    return Target(f"tensorrt{major}", lo, hi, ir, ("", "ai.onnx", "trt.plugins"), unsupported, source)


def parse_targets(texts: str | Sequence[str]) -> tuple[Target, ...]:
    """``ort==1.17,ort-web,tensorrt10`` (comma-separated, repeatable) -> targets."""
    items = [t.strip().lower() for text in ([texts] if isinstance(texts, str) else texts) for t in text.split(",")]
    out = []
    for item in filter(None, items):
        m = re.fullmatch(r"(ort|ort-web|onnxruntime|onnxruntime-web)(?:==(\d+\.\d+(?:\.\d+)?))?", item)
        if m:
            out.append(_ort(m.group(2), m.group(1).endswith("web")))
            continue
        m = re.fullmatch(r"(?:tensorrt|trt)(?:==)?(\d+)(?:\.\d+)*", item)
        if m:
            out.append(_tensorrt(m.group(1)))
            continue
        raise UsageError(f"unknown --target {item!r}", f"targets: {', '.join(TARGET_NAMES)}")
    return tuple(out)


def _nodes(graph: onnx.GraphProto):
    import onnx

    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _nodes(attr.g)
            for g in attr.graphs:
                yield from _nodes(g)


def _missing_ops(model: onnx.ModelProto, target: Target, opset: int) -> list[str]:
    """Standard ops the target lacks: not defined at ``opset`` yet, or not implemented by the target."""
    from onnx import defs

    missing = set()
    for node in _nodes(model.graph):
        if node.domain not in ("", "ai.onnx"):
            continue
        if node.op_type in target.unsupported_ops:
            missing.add(f"{node.op_type} (not implemented)")
        elif not defs.has(node.op_type, max(opset, 1)):
            missing.add(f"{node.op_type} (not in opset {opset})")
    return sorted(missing)


def check_target(model: onnx.ModelProto, target: Target) -> TargetCheck:
    """The static check: IR version, opset range, domains and ops (no conversion tried here)."""
    from .onnxio import main_opset

    opset = main_opset(model)
    problems = []
    if model.ir_version > target.max_ir:
        problems.append(f"IR version {model.ir_version} > {target.max_ir}, the newest it loads")
    if opset > target.max_opset:
        problems.append(f"opset {opset} > {target.max_opset}, the newest it implements")
    elif opset < target.min_opset:
        problems.append(f"opset {opset} < {target.min_opset}, the oldest it reads")
    domains = sorted({o.domain for o in model.opset_import} - set(target.domains))
    if domains:
        problems.append(f"op domain(s) it lacks: {', '.join(domains)}")
    ops = _missing_ops(model, target, min(max(opset, target.min_opset), target.max_opset))
    if ops:
        problems.append(f"ops: {', '.join(ops)}")
    fix = None
    if problems and not domains and not ops:  # only the versions are in the way: a conversion may fix it
        fix = target.max_opset if opset > target.max_opset else max(opset, target.min_opset)
    return TargetCheck(target.name, not problems, tuple(problems), fix_opset=fix, source=target.source)
