"""Graph helpers the variant builders share: node names, op counts, intermediate values, sizes, and
the ONNX Runtime error that names a missing kernel."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..onnxio import op_counts

if TYPE_CHECKING:
    import onnx

__all__ = [
    "TOOL_LOGGERS",
    "quiet_tools",
    "session",
    "run",
    "run_intermediates",
    "name_nodes",
    "op_counts",
    "file_size",
    "missing_kernel",
    "drop_initializer_value_info",
]

# onnxruntime.quantization / .transformers, onnxsim, onnxslim and onnxscript log (and print) freely;
# "" is the root logger, which onnxruntime.quantization logs to.
TOOL_LOGGERS = (
    "",
    "onnxruntime",
    "onnxruntime.quantization",
    "onnxruntime.transformers",
    "onnxslim",
    "onnxscript",
    "onnx_ir",
    "onnxruntime.tools",
    "fusion_base",
    "onnx_model",
    "fusion_utils",
    "shape_infer_helper",
    "symbolic_shape_infer",
)


@contextmanager
def quiet_tools() -> Iterator[Any]:
    """``_util.quiet`` over the conversion tools' loggers."""
    from .._util import quiet

    with quiet(TOOL_LOGGERS) as buf:
        yield buf


def session(
    model: onnx.ModelProto | bytes | str | Path,
    provider: str = "cpu",
    *,
    threads: int | None = None,
    level: str = "all",
):
    """An ONNX Runtime session on ``provider`` (a named provider that does not run is a ``ProviderError``)."""
    from ..runtime.providers import create_session
    from ..runtime.timing import session_options

    payload = model.SerializeToString() if hasattr(model, "SerializeToString") else model
    return create_session(payload, provider, options=session_options(threads, level))[0]


def run(sess, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Run ``sess`` on the feeds it declares (variants keep the fp32 model's input types, and the
    cases were cast to them once when they were read)."""
    names = {i.name for i in sess.get_inputs()}
    return list(sess.run(None, {k: v for k, v in feeds.items() if k in names}))


def run_intermediates(
    model: onnx.ModelProto,
    cases: Sequence[Mapping[str, np.ndarray]],
    names: Sequence[str] | None = None,
    *,
    chunk: int = 400,
    threads: int | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """Values of node outputs by name, one dict per case: one session for all the cases, in which they are
    graph outputs (name only: ONNX Runtime accepts that) and graph optimisation is off (every value still
    exists), fetched in chunks to bound the memory the fetched values hold at once."""
    import onnx

    names = list(names) if names is not None else [o for n in model.graph.node for o in n.output if o]
    m = onnx.ModelProto()
    m.CopyFrom(model)
    known = {o.name for o in m.graph.output}
    for n in names:
        if n not in known:
            m.graph.output.add().name = n
    sess = session(m, threads=threads, level="disable")
    del m
    for feeds in cases:
        result: dict[str, np.ndarray] = {}
        for start in range(0, len(names), chunk):
            part = names[start : start + chunk]
            result.update(zip(part, sess.run(part, dict(feeds))))
        yield result


def name_nodes(model: onnx.ModelProto, prefix: str = "n") -> onnx.ModelProto:
    """Give every top-level node a unique name (block lists and reports address nodes by name)."""
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{prefix}{i}_{node.op_type}"
        seen.add(node.name)
    return model


def file_size(path: str | Path) -> int:
    """Bytes on disk, with the external-data files an ONNX model names."""
    import onnx

    from ..onnxio import external_files

    path = Path(path)
    total = path.stat().st_size
    if path.suffix == ".onnx":
        locations = external_files(onnx.load(str(path), load_external_data=False))
        total += sum((path.parent / loc).stat().st_size for loc in locations if (path.parent / loc).is_file())
    return total


_NOT_IMPL = re.compile(r"Could not find an implementation for (\w+)\((\d+)\) node with name '([^']*)'")
_BAD_TYPE = re.compile(r"Type '([^']+)' of input parameter \(([^)]*)\) of operator \((\w+)\)")


def missing_kernel(error: BaseException | str) -> str | None:
    """``MatMul(13) node 'mm0'`` when ONNX Runtime refused a session for want of a kernel, else None."""
    text = str(error)
    m = _NOT_IMPL.search(text)
    if m:
        return f"{m.group(1)}({m.group(2)})" + (f" node {m.group(3)!r}" if m.group(3) else "")
    m = _BAD_TYPE.search(text)
    return f"{m.group(3)} with {m.group(1)}" if m else None


def drop_initializer_value_info(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy without ``value_info`` entries naming initializers.

    torch.onnx's dynamo exporter writes them; quantize_dynamic rewrites ``Gemm(transB=1)`` as MatMul with
    a transposed initializer under the same name, and the stale entry fails ONNX shape inference
    ("Inferred shape and existing shape differ in dimension 0", measured with onnxruntime 1.31).
    """
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    init = {t.name for t in m.graph.initializer}
    keep = [v for v in m.graph.value_info if v.name not in init]
    del m.graph.value_info[:]
    m.graph.value_info.extend(keep)
    return m
