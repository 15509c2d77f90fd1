"""The weights files of a Hugging Face folder, checked before any loader touches them: a safetensors
header read and validated by the rules the safetensors library applies (so every refusal names the
file and what is wrong, exit 2), and a shard index whose every tensor is where it says.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["SafetensorsHeader", "check_index", "read_safetensors_header"]

MAX_HEADER = 100_000_000  # the safetensors library refuses larger headers
MAX_U64 = 2**64 - 1
# dtype -> bits per element: the dtypes torch can load from safetensors
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
_HINT = "the file is damaged or not a safetensors file: copy it again, or re-save the model with save_pretrained"


@dataclass(frozen=True)
class SafetensorsHeader:
    """What a valid header says: tensor names, their data bytes, the file's metadata."""

    path: Path
    tensors: tuple[str, ...]
    data_bytes: int
    metadata: tuple[tuple[str, str], ...] = ()


def _bad(path: Path, what: str) -> InputError:
    return InputError(f"{path}: unreadable safetensors weights: {what}", _HINT)


def _uint(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_U64  # bool is an int subclass: not a size


def _tensor_bytes(path: Path, name: str, info: Any) -> tuple[int, int, int]:
    """(begin, end, expected size) of one tensor entry, or the reason it is malformed."""
    if not isinstance(info, dict):
        raise _bad(path, f"tensor {name!r} is described by a {type(info).__name__}, not an object")
    missing = [k for k in ("dtype", "shape", "data_offsets") if k not in info]
    if missing:
        raise _bad(path, f"tensor {name!r} has no {missing[0]}")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise _bad(
            path, f"tensor {name!r} has dtype {dtype!r}, which torch cannot load (known: {', '.join(DTYPE_BITS)})"
        )
    if not isinstance(shape, list) or not all(_uint(d) for d in shape):
        raise _bad(path, f"tensor {name!r} has shape {str(shape)[:80]}, not a list of sizes")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_uint(o) for o in offsets)):
        raise _bad(path, f"tensor {name!r} has data_offsets {str(offsets)[:80]}, not [begin, end]")
    elements = 1
    for d in shape:
        elements *= d
    bits = elements * DTYPE_BITS[dtype]
    if bits > MAX_U64 or bits % 8:
        raise _bad(path, f"tensor {name!r} of shape {shape} is not a whole number of bytes")
    return offsets[0], offsets[1], bits // 8


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    """The header of ``path``, checked as the safetensors library checks it: the length prefix, JSON,
    every dtype, shape and offset, the data covering the file exactly. Raises InputError naming what."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise _bad(path, f"the file has {size} bytes, fewer than the 8 of its header length")
            (n,) = struct.unpack("<Q", prefix)
            if n > MAX_HEADER:
                raise _bad(path, f"the header claims {n} bytes (more than {MAX_HEADER}): not a safetensors file")
            if n > size - 8:
                raise _bad(
                    path, f"the header claims {n} bytes but the file holds {size - 8} after its length: truncated"
                )
            raw = f.read(n)
    except OSError as e:
        raise InputError(f"{path}: cannot read the weights ({e.strerror or e})", "check the file's permissions") from e
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise _bad(path, f"the header is not JSON ({type(e).__name__}: {str(e)[:120]})") from e
    if not isinstance(header, dict):
        raise _bad(path, f"the header is a JSON {type(header).__name__}, not an object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise _bad(path, "__metadata__ is not a map of strings")
    spans = sorted((*_tensor_bytes(path, name, info), name) for name, info in header.items())
    data = size - 8 - n
    start = 0
    for begin, end, want, name in spans:
        if end > data:
            raise _bad(
                path,
                f"tensor {name!r} ends at byte {end} of the data, past its end ({data} bytes): "
                "the file is truncated or its offsets are wrong",
            )
        if begin != start or end < begin:
            raise _bad(
                path,
                f"tensor {name!r} starts at byte {begin} of the data, where {start} was expected "
                "(tensors overlap or leave a gap)",
            )
        if end - begin != want:
            raise _bad(path, f"tensor {name!r} holds {end - begin} bytes, but its shape and dtype need {want}")
        start = end
    if start != data:
        raise _bad(path, f"the tensors cover {start} bytes of data, the file holds {data}: extra or missing bytes")
    return SafetensorsHeader(path, tuple(name for *_, name in spans), data, tuple(sorted(metadata.items())))


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_index(index: Path, weight_map: dict[str, str], headers: dict[str, SafetensorsHeader]) -> None:
    """Every tensor the index names lies in the shard it names."""
    for tensor, shard in weight_map.items():
        header = headers.get(shard)
        if header is not None and tensor not in header.tensors:
            raise InputError(
                f"{index}: tensor {tensor!r} is said to be in {shard}, which does not hold it",
                "the index and the shards come from different saves: copy them again together",
            )
