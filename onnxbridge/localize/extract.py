"""The minimal failing subgraph: a standalone ``.onnx`` plus a fixtures ``.npz`` with its inputs and the
reference's outputs, small enough to attach to an upstream bug report.

The subgraph is built here rather than with ``onnx.utils.Extractor`` (onnx 1.23), which needs a
``value_info`` for every chosen input and output (``ValueError: The following names were not found in
value_infos`` otherwise) and, given an incomplete input list, silently walks back further and returns
a graph with inputs left unfed. Here the inputs are every value the nodes read and do not make (minus
constants), typed and shaped from the recorded arrays, and constant chains come along.

The ``.npz`` is onnxbridge's one fixtures format (case ``repro``), so the difference replays with
``onnxbridge validate repro.onnx --expected repro.npz`` (exit 1 while it reproduces), or with numpy and
onnxruntime alone (keys ``inputs::repro::NAME`` and ``outputs::repro::NAME``).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..results.localize import Repro
from .compare import Scorer
from .finding import ReproCase

if TYPE_CHECKING:
    import onnx

__all__ = ["subgraph", "write_repro"]


def _pull_constants(model: onnx.ModelProto, keep: list[onnx.NodeProto], have: set[str]) -> tuple[list, set[str]]:
    """The constant-producing nodes and the initializers ``keep`` reads beyond ``have``."""
    producer = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name for i in model.graph.initializer}
    extra: list[onnx.NodeProto] = []
    need_inits: set[str] = set()
    stack = [i for n in keep for i in n.input if i and i not in have]
    while stack:
        v = stack.pop()
        if v in have:
            continue
        have.add(v)
        if v in inits:
            need_inits.add(v)
            continue
        p = producer.get(v)
        if p is None:
            raise ValueError(f"value {v!r} is neither an input of the subgraph nor computable from constants")
        extra.append(p)
        have.update(p.output)
        stack.extend(i for i in p.input if i)
    return extra, need_inits


def subgraph(
    model: onnx.ModelProto, nodes: Sequence[str], inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray]
) -> onnx.ModelProto:
    """``nodes`` of ``model`` (with the constants they read) as a checked model whose inputs are
    ``inputs`` and whose outputs are ``outputs``, typed and shaped from those arrays."""
    import onnx
    from onnx import helper

    by_name = {n.name: n for n in model.graph.node}
    keep = [by_name[n] for n in nodes]
    extra, need_inits = _pull_constants(model, keep, set(inputs) | {o for n in keep for o in n.output})
    order = {n.name: k for k, n in enumerate(model.graph.node)}
    chosen = sorted({id(n): n for n in keep + extra}.values(), key=lambda n: order.get(n.name, -1))

    def info(name: str, arr: np.ndarray) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(arr.dtype), list(arr.shape))

    copies = []
    for n in chosen:
        c = onnx.NodeProto()
        c.CopyFrom(n)
        copies.append(c)
    graph = helper.make_graph(
        copies,
        "onnxbridge_repro",
        [info(k, v) for k, v in inputs.items()],
        [info(k, v) for k, v in outputs.items()],
        [i for i in model.graph.initializer if i.name in need_inits],
    )
    sub = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    used = {(n.domain, n.op_type) for n in chosen}
    sub.functions.extend(f for f in model.functions if (f.domain, f.name) in used)
    onnx.checker.check_model(sub)
    return sub


def write_repro(case: ReproCase, directory: Path, stem: str, scorer: Scorer) -> Repro:
    """Extract the subgraph, check that it shows the difference on its own, and write ``STEM.onnx`` and
    ``STEM.npz`` into ``directory`` (each atomically). Raises ``ValueError`` when no subgraph stands alone."""
    from ..onnxio import save_onnx
    from ..parity.fixtures import write_fixtures
    from ..runtime.sessions import OrtRunner

    out_types = {
        name: np.empty(np.shape(arr), dtype=_dtype_of(case.model, name, arr)) for name, arr in case.expected.items()
    }
    sub = subgraph(case.model, case.nodes, case.inputs, out_types)
    runner = OrtRunner(sub, case.provider)
    got = runner.fetch(dict(case.inputs), list(case.expected))
    diffs = [scorer.diff(n, case.expected[n], got[n]) for n in case.expected]
    worst = max(diffs, key=lambda d: d.score)
    onnx_path, npz_path = directory / f"{stem}.onnx", directory / f"{stem}.npz"
    save_onnx(sub, onnx_path)
    write_fixtures(
        npz_path,
        inputs=[("repro", dict(case.inputs))],
        outputs=[("repro", dict(case.expected))],
        meta={
            "what": "onnxbridge debug: minimal failing subgraph",
            "nodes": list(case.nodes),
            "provider": case.provider,
        },
    )
    return Repro(
        str(onnx_path),
        str(npz_path),
        len(sub.graph.node),
        tuple(case.inputs),
        tuple(case.expected),
        onnx_path.stat().st_size + npz_path.stat().st_size,
        not worst.passed,
        worst.score,
        worst.max_abs,
        replay_command(onnx_path, npz_path, scorer, case.provider),
    )


def _dtype_of(model: onnx.ModelProto, name: str, arr: np.ndarray) -> np.dtype:
    """The element type ``model`` declares for a value (an fp16 model's output), else the array's."""
    from onnx import helper

    from .graph import value_elem_types

    t = value_elem_types(model).get(name)
    return np.dtype(helper.tensor_dtype_to_np_dtype(t)) if t else np.asarray(arr).dtype


def replay_command(onnx_path: Path, npz_path: Path, scorer: Scorer, provider: str) -> str:
    """The onnxbridge command that replays a repro (exit 1 while the difference is there)."""
    args = ["onnxbridge", "validate", str(onnx_path), "--expected", str(npz_path)]
    if provider != "cpu":
        args += ["--provider", provider]
    if scorer.tolerances.atol is not None:
        args += ["--atol", f"{scorer.tolerances.atol:g}"]
    if scorer.tolerances.rtol is not None:
        args += ["--rtol", f"{scorer.tolerances.rtol:g}"]
    return shlex.join(args)
