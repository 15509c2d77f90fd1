"""ONNX files in and out, treating every file as hostile.

Files are opened through ``onnx.load`` and checked (versions this onnx knows, external-data
references that stay regular files inside the model's folder and within their sizes) before any
other tool sees them. Weights in external data stay on disk: ``load_onnx`` reads the graph only,
and ONNX Runtime and the large-model simplifier read the weights by path (:func:`session_payload`).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._util import first_line
from .errors import InputError, UnsafeInputError
from .publish import pending, publish, scratch_dir

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import onnx

    from .results import ExportedAxis, ModelInfo
    from .specs import SizeRange, TensorSpec

__all__ = [
    "load_onnx",
    "save_onnx",
    "publish_model",
    "model_info",
    "TWO_GB",
    "node_count",
    "main_opset",
    "op_counts",
    "graph_inputs",
    "value_infos",
    "input_specs",
    "uses_external_data",
    "external_files",
    "data_name",
    "session_payload",
    "check_versions",
    "weight_bytes",
    "copy_model",
    "load_weights",
    "AXIS_RANGES_KEY",
    "write_axis_ranges",
    "read_axis_ranges",
    "write_meta",
    "read_meta",
    "decode_meta",
]

TWO_GB = 2**31 - 1
_EXTERNAL = 1  # TensorProto.EXTERNAL
_VERSION_HINT = "upgrade onnx and onnxruntime (pip install -U onnx onnxruntime), or re-export with an older --opset"


def load_onnx(path: str | Path, *, check: bool = True) -> onnx.ModelProto:
    """Load and check an ONNX file (its graph; external weights stay on disk); every failure is an
    ``InputError`` naming the file."""
    import onnx

    path = Path(path)
    if not path.exists():
        raise InputError(f"ONNX file {path} does not exist", "check the path")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not an ONNX file", "give the path of a .onnx file")
    journal = pending(path)
    if journal is not None:
        raise InputError(
            f"{path} is incomplete: a run that wrote it with its other files was interrupted ({journal})",
            "rerun the command that wrote it (onnxbridge convert / check --update); it finishes the write",
        )
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # DecodeError, truncated files, garbage
        raise InputError(
            f"{path} is not a readable ONNX model ({first_line(e)})",
            "the file may be truncated or not ONNX at all; re-export it",
        ) from e
    check_versions(model, path)
    _check_external(model, path)
    if check:
        if not model.graph.node and not model.graph.output:
            raise InputError(f"{path} holds no ONNX graph (empty or not a model)", "re-export the model")
        try:
            if uses_external_data(model) or model.ByteSize() > TWO_GB:
                onnx.checker.check_model(str(path))
            else:
                onnx.checker.check_model(model)
        except Exception as e:
            raise InputError(
                f"{path} is not a valid ONNX model: {first_line(e, with_type=False)}", "re-export the model"
            ) from e
    return model


def check_versions(model: onnx.ModelProto, path: str | Path) -> None:
    """Refuse a model stamped with an IR version or opset newer than the installed onnx knows."""
    import onnx

    last = onnx.helper.VERSION_TABLE[-1]  # (release, IR, ai.onnx, ai.onnx.ml[, ai.onnx.training])
    newest: dict[str, int | None] = {
        "": onnx.defs.onnx_opset_version(),
        "ai.onnx": onnx.defs.onnx_opset_version(),
        "ai.onnx.ml": last[3],
        "ai.onnx.training": last[4] if len(last) == 5 else None,
    }
    problems = []
    if model.ir_version > onnx.IR_VERSION:
        problems.append(f"IR version {model.ir_version} (this onnx reads up to {onnx.IR_VERSION})")
    for o in model.opset_import:
        top = newest.get(o.domain)
        if top is not None and o.version > top:
            problems.append(f"opset {o.version} of {o.domain or 'ai.onnx'} (this onnx knows up to {top})")
    if problems:
        raise InputError(
            f"{path} is newer than the installed onnx {onnx.__version__} supports: {'; '.join(problems)}", _VERSION_HINT
        )


def load_weights(model: onnx.ModelProto, path: str | Path) -> onnx.ModelProto:
    """Read a model's external data into it (for tools that need the weights in memory: the opset
    converter, onnxsim); its references were checked by :func:`load_onnx`."""
    from onnx.external_data_helper import load_external_data_for_model

    if uses_external_data(model):
        load_external_data_for_model(model, str(Path(path).resolve().parent))
    return model


def uses_external_data(model: onnx.ModelProto) -> bool:
    """Does any initializer keep its data in an external file?"""
    return any(t.data_location == _EXTERNAL for t in _tensors(model))


def _tensors(model: onnx.ModelProto):
    from onnx.external_data_helper import _get_all_tensors

    return _get_all_tensors(model)


def external_files(model: onnx.ModelProto) -> list[str]:
    """The external-data locations a model refers to, in order of first use."""
    out: dict[str, None] = {}
    for t in _tensors(model):
        if t.data_location == _EXTERNAL:
            out.setdefault(_info(t).get("location", ""), None)
    return list(out)


def _info(t) -> dict[str, str]:
    return {e.key: e.value for e in t.external_data}


def _check_external(model: onnx.ModelProto, path: Path) -> None:
    """Each external reference: a relative path to a regular file inside the model's folder (no
    symlink), and offset + length within that file."""
    folder = path.resolve().parent
    sizes: dict[str, int] = {}
    for t in _tensors(model):
        if t.data_location != _EXTERNAL:
            continue
        info = _info(t)
        loc = info.get("location", "")
        where = f"{path}: tensor {t.name!r}"
        target = folder / loc
        try:
            link = target.is_symlink()
            if not loc or "\0" in loc or os.path.isabs(loc) or not _inside(target, folder, follow=not link):
                raise UnsafeInputError(
                    f"{where}: refused external data at {loc!r} (outside the model's folder)",
                    "external data must be a regular file inside the model's folder",
                )
            if loc not in sizes:
                if link or not target.is_file():
                    what = "a symbolic link" if link else "missing or not a regular file"
                    raise UnsafeInputError(
                        f"{where}: external data {loc!r} is {what}",
                        "external data must be a regular file inside the model's folder",
                    )
                sizes[loc] = target.stat().st_size
        except (OSError, ValueError) as e:  # a name too long, a NUL byte...
            raise InputError(
                f"{where}: unusable external-data location {loc[:80]!r} ({first_line(e)})", "re-export the model"
            ) from e
        try:
            offset, length = int(info.get("offset", 0)), int(info.get("length", -1))
        except ValueError as e:
            raise InputError(f"{where}: malformed external-data offset/length", "re-export the model") from e
        if offset < 0 or offset + max(length, 0) > sizes[loc]:
            raise InputError(
                f"{where}: external data {loc!r} is {sizes[loc]} bytes, shorter than offset {offset} + length {length}",
                "the data file is truncated or belongs to another model; re-export it",
            )


def _inside(target: Path, folder: Path, *, follow: bool = True) -> bool:
    """Inside ``folder`` as written (and, with ``follow``, once links in its folders are resolved)."""
    try:
        lexical = Path(os.path.normpath(target))
        return lexical.is_relative_to(folder) and (not follow or target.resolve().is_relative_to(folder))
    except (OSError, ValueError):
        return False


def data_name(path: str | Path) -> str:
    """The external-data file onnxbridge writes beside ``path``: ``NAME.onnx.data``."""
    return Path(path).name + ".data"


def session_payload(model: onnx.ModelProto, path: str | Path | None) -> bytes | str:
    """What ONNX Runtime should load: the file's path for external data or over 2 GB, else bytes."""
    from .errors import UsageError

    if uses_external_data(model) or model.ByteSize() >= TWO_GB:
        if path is None:
            raise UsageError(
                "a model with external data (or over 2 GB) must be loaded from its file", "save it first, then validate"
            )
        return str(path)
    return model.SerializeToString()


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the initializers (external data included), from their dims and types."""
    return sum(_elements(init) * _itemsize(init.data_type) for init in model.graph.initializer)


def _elements(init: onnx.TensorProto) -> int:
    """Elements of an initializer, from its dims (a scalar holds one; a negative dim counts as none)."""
    import numpy as np

    return max(int(np.prod(init.dims, dtype=object)), 0) if init.dims else 1


def _itemsize(data_type: int) -> int:
    """Bytes per element; sub-byte and unknown types count as one."""
    import onnx

    try:
        return max(onnx.helper.tensor_dtype_to_np_dtype(data_type).itemsize, 1)
    except (KeyError, TypeError, ValueError):
        return 1


def save_onnx(model: onnx.ModelProto, path: str | Path, *, external_data: bool = False) -> Path:
    """Write ``model`` (its weights in memory) crash-safely; with ``external_data`` or over 2 GB its
    weights go to ``NAME.onnx.data`` beside it, published together with the graph."""
    import onnx

    path = Path(path)
    scratch = scratch_dir(path.parent)
    try:
        staged = scratch / path.name
        data = path.parent / data_name(path)
        if external_data or model.ByteSize() >= TWO_GB:
            onnx.save_model(model, str(staged), save_as_external_data=True, location=data.name, size_threshold=1024)
        else:
            onnx.save_model(model, str(staged))
        files = {path: staged}
        if (scratch / data.name).exists():
            files[data] = scratch / data.name
        publish(files, remove=[data] if data not in files and data.exists() else [])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return path


def publish_model(src: str | Path, out: str | Path) -> Path:
    """Move the ONNX file ``src`` and its external data (written as ``data_name(out)`` beside it)
    into place at ``out``, together; an old ``OUT.onnx.data`` no longer used is removed."""
    import onnx

    src, out = Path(src), Path(out)
    model = onnx.load(str(src), load_external_data=False)
    files: dict[Path, Path] = {out: src}
    for loc in external_files(model):
        if loc != data_name(out):
            raise ValueError(f"{src}: external data {loc!r} is not named after {out.name}")
        files[out.parent / loc] = src.parent / loc
    data = out.parent / data_name(out)
    publish(files, remove=[data] if data not in files and data.exists() else [])
    return out


def copy_model(src: str | Path, dst: str | Path) -> Path:
    """Write the model at ``src`` to ``dst`` with its weights in ``data_name(dst)``, streamed from the
    memory-mapped source (onnx-ir), never whole in memory."""
    import onnx_ir as ir

    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    ir.save(ir.load(src), dst, external_data=data_name(dst))
    return dst


def main_opset(model: onnx.ModelProto) -> int:
    """The model's ``ai.onnx`` opset (0 when it imports none)."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def node_count(model: onnx.ModelProto) -> int:
    """Nodes in the main graph and every subgraph."""
    import onnx

    def count(graph: onnx.GraphProto) -> int:
        n = 0
        for node in graph.node:
            n += 1
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    n += count(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    n += sum(count(g) for g in attr.graphs)
        return n

    return count(model.graph)


def op_counts(model: onnx.ModelProto) -> Counter:
    """Op type (``domain::Op`` outside the default domain) -> count, in the main graph."""
    return Counter((f"{n.domain}::" if n.domain not in ("", "ai.onnx") else "") + n.op_type for n in model.graph.node)


def graph_inputs(model: onnx.ModelProto) -> list:
    """The graph inputs a caller feeds: initializers listed as inputs (older exporters) left out."""
    init = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in init]


def value_infos(values) -> list[dict]:
    """name / dims (int, str or None) / dtype of graph inputs or outputs."""

    out = []
    for v in values:
        t = v.type.tensor_type
        dims: list[int | str | None] = []
        if t.HasField("shape"):
            for d in t.shape.dim:
                dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
        dtype = _dtype_name(t.elem_type)
        out.append({"name": v.name, "dims": dims, "dtype": dtype})
    return out


def _dtype_name(elem_type: int) -> str:
    """numpy's name for an ONNX element type, else ONNX's own (``FLOAT4E2M1``), else ``unknown``."""
    import onnx

    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type).name
    except (KeyError, TypeError, ValueError):
        try:
            return onnx.TensorProto.DataType.Name(elem_type) if elem_type else "unknown"
        except ValueError:
            return "unknown"


def model_info(path: str | Path) -> ModelInfo:
    """Load ``path`` safely and describe it."""
    from .results import ModelInfo

    model = load_onnx(path)
    params = sum(_elements(i) for i in model.graph.initializer)
    nbytes = weight_bytes(model)
    hist = op_counts(model)
    return ModelInfo(
        path=str(path),
        size_bytes=Path(path).stat().st_size,
        ir_version=model.ir_version,
        opsets={(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        inputs=value_infos(graph_inputs(model)),
        outputs=value_infos(model.graph.output),
        op_histogram=dict(hist.most_common()),
        nodes=node_count(model),
        parameters=params,
        initializer_bytes=nbytes,
    )


def input_specs(model: onnx.ModelProto) -> tuple[TensorSpec, ...]:
    """TensorSpecs of the graph inputs; unnamed unknown dims get a name of their own."""
    from .specs import TensorSpec

    specs = []
    for info in value_infos(graph_inputs(model)):
        dims = tuple(
            d if isinstance(d, int) and d > 0 else (d if isinstance(d, str) else f"{info['name']}_dim{i}")
            for i, d in enumerate(info["dims"])
        )
        specs.append(TensorSpec(info["name"], dims, info["dtype"]))
    return tuple(specs)


# ------------------------------------------------------------------ our own metadata_props: JSON, one encoding


def write_meta(props: Any, key: str, value: Any) -> None:
    """Write ``value`` as JSON under ``key`` in ``props`` (a model's or a node's ``metadata_props``),
    in place of any earlier entry; ``None`` removes the key. Everything onnxbridge writes into an ONNX
    file's metadata goes through here, and :func:`read_meta` reads it back."""
    import json

    at = [i for i, p in enumerate(props) if p.key == key]
    if value is not None and at:
        props[at.pop(0)].value = json.dumps(value, sort_keys=True)  # keeps its place
    elif value is not None:
        props.add(key=key, value=json.dumps(value, sort_keys=True))
    for i in reversed(at):
        del props[i]


def decode_meta(text: str | None) -> Any:
    """The JSON value ``text`` holds; ``None`` when absent or not JSON (a file from elsewhere may hold anything).
    Parsed as data only: nothing in a file is ever evaluated."""
    import json

    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def read_meta(props: Any, key: str) -> Any:
    """The JSON value :func:`write_meta` wrote under ``key`` in ``props`` (``None`` when absent or not JSON)."""
    return decode_meta(next((p.value for p in props if p.key == key), None))


# metadata_props key: {axis: {"declared": [lo, hi|null] | null, "exported": [lo, hi|null] | null, "guard": str|null}}
AXIS_RANGES_KEY = "onnxbridge.axis_ranges"


def write_axis_ranges(
    model: onnx.ModelProto, declared: Mapping[str, SizeRange], exported: Sequence[ExportedAxis]
) -> None:
    """Record in the model's metadata the range each dynamic axis was declared valid on (``seq=1..24``)
    and the range the exporter recorded, so that a later ``validate`` or ``check`` judges the same range."""
    by_axis = {e.axis: e for e in exported}
    entry = {}
    for axis in sorted(set(declared) | set(by_axis)):
        d, e = declared.get(axis), by_axis.get(axis)
        entry[axis] = {
            "declared": [d.lo, d.hi] if d else None,
            "exported": [e.lo, e.hi] if e else None,
            "guard": e.guard if e else None,
        }
    write_meta(model.metadata_props, AXIS_RANGES_KEY, entry or None)


def read_axis_ranges(model: onnx.ModelProto) -> tuple[dict[str, SizeRange], tuple[ExportedAxis, ...]]:
    """(declared ranges, exporter ranges) from the model's metadata; nothing when absent or malformed
    (a file from elsewhere may hold anything under that key)."""
    from .results import ExportedAxis
    from .specs import SizeRange

    declared: dict[str, SizeRange] = {}
    exported: list[ExportedAxis] = []
    try:
        for axis, entry in (read_meta(model.metadata_props, AXIS_RANGES_KEY) or {}).items():
            d, e = entry.get("declared"), entry.get("exported")
            if d:
                declared[str(axis)] = SizeRange(int(d[0]), None if d[1] is None else int(d[1]))
            if e:
                guard = entry.get("guard")
                exported.append(
                    ExportedAxis(
                        str(axis), int(e[0]), None if e[1] is None else int(e[1]), str(guard) if guard else None
                    )
                )
    except (ValueError, TypeError, AttributeError, IndexError, KeyError):
        return {}, ()
    return declared, tuple(exported)
