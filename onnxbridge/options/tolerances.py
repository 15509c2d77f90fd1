"""Tolerances: ``--atol`` / ``--rtol`` over the dtype defaults, and ``--tol NAME=ATOL[,RTOL]`` per output."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import UsageError

__all__ = ["Tolerance", "ToleranceLike", "Tolerances", "parse_tolerances"]


@dataclass(frozen=True)
class Tolerance:
    """Elementwise check: ``|got - ref| <= atol + rtol * |ref|``.

    ``rtol=None`` (from ``--tol NAME=ATOL``) keeps the output dtype's default rtol.
    """

    atol: float
    rtol: float | None


_TOL_HINT = "write --tol NAME=ATOL[,RTOL], e.g. --tol logits=1e-3,1e-2 (NAME as `onnxbridge inspect` lists it)"

# what one output's tolerance may be given as through the API: a Tolerance, (atol, rtol), (atol,) or atol
ToleranceLike = Tolerance | tuple[float, float | None] | tuple[float] | float


def parse_tolerances(texts: Sequence[str] | None) -> dict[str, Tolerance]:
    """Parse ``--tol NAME=ATOL[,RTOL]`` values (repeatable) into per-output tolerances."""
    hint = _TOL_HINT
    out: dict[str, Tolerance] = {}
    for text in texts or ():
        name, sep, values = str(text).rpartition("=")
        parts = [v.strip() for v in values.split(",")]
        if not sep or not name.strip() or len(parts) not in (1, 2):
            raise UsageError(f"malformed --tol {text!r}: expected NAME=ATOL[,RTOL]", hint)
        try:
            nums = [float(v) for v in parts]
        except ValueError:
            raise UsageError(f"malformed --tol {text!r}: {values!r} is not ATOL[,RTOL] numbers", hint) from None
        if any(not math.isfinite(v) or v < 0 for v in nums):
            raise UsageError(f"malformed --tol {text!r}: tolerances must be finite and >= 0", hint)
        name = name.strip()
        if name in out:
            raise UsageError(f"--tol {name} is given twice", "give one --tol per output")
        out[name] = Tolerance(nums[0], nums[1] if len(nums) == 2 else None)
    return out


def _tolerance(name: str, value: ToleranceLike) -> Tolerance:
    """One output's tolerance given through the API, checked as ``--tol NAME=...`` is."""
    if isinstance(value, Tolerance):
        parts: tuple[object, ...] = (value.atol,) if value.rtol is None else (value.atol, value.rtol)
    elif isinstance(value, (int, float)):
        parts = (value,)
    else:
        parts = tuple(value)
        if len(parts) == 2 and parts[1] is None:  # (atol, None): the dtype's default rtol
            parts = parts[:1]
    nums = [float(v) for v in parts if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not name.strip() or len(nums) != len(parts) or len(nums) not in (1, 2):
        raise UsageError(f"malformed tolerance for {name!r}: {value!r} is not ATOL or (ATOL, RTOL)", _TOL_HINT)
    if any(not math.isfinite(v) or v < 0 for v in nums):
        raise UsageError(f"malformed tolerance for {name!r}: tolerances must be finite and >= 0", _TOL_HINT)
    return Tolerance(nums[0], nums[1] if len(nums) == 2 else None)


def _check_tolerance(value: float | None, flag: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise UsageError(f"{flag} {value!r} must be a finite number >= 0", f"e.g. {flag} 1e-4")
    return float(value)


@dataclass(frozen=True)
class Tolerances:
    """The user's tolerances: ``--atol`` / ``--rtol`` over the dtype defaults, and ``--tol`` per output;
    ``oracle_multiple`` (``--oracle-multiple``): a float32 output that fails them still passes when its
    distance to the source run in float64 is at most this multiple of the source's own (0: no oracle)."""

    atol: float | None = None
    rtol: float | None = None
    per_output: tuple[tuple[str, Tolerance], ...] = ()
    oracle_multiple: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "atol", _check_tolerance(self.atol, "--atol"))
        object.__setattr__(self, "rtol", _check_tolerance(self.rtol, "--rtol"))
        multiple = _check_tolerance(self.oracle_multiple, "--oracle-multiple")
        object.__setattr__(self, "oracle_multiple", 2.0 if multiple is None else multiple)

    @classmethod
    def build(
        cls,
        atol: float | None = None,
        rtol: float | None = None,
        tolerances: Mapping[str, ToleranceLike] | Sequence[str] | Tolerances | None = None,
        oracle_multiple: float | None = None,
    ) -> Tolerances:
        """From API keywords: ``tolerances`` as ``--tol`` strings or a mapping name -> Tolerance /
        (atol, rtol) / atol, each checked as ``--tol`` checks it (finite, >= 0)."""
        multiple = 2.0 if oracle_multiple is None else oracle_multiple
        if isinstance(tolerances, Tolerances):
            return cls(
                atol,
                rtol,
                tolerances.per_output,
                multiple if oracle_multiple is not None else tolerances.oracle_multiple,
            )
        if isinstance(tolerances, Mapping):
            return cls(atol, rtol, tuple((str(n), _tolerance(str(n), t)) for n, t in tolerances.items()), multiple)
        return cls(atol, rtol, tuple(parse_tolerances([str(t) for t in tolerances or ()]).items()), multiple)

    def for_output(self, name: str) -> Tolerance | None:
        """The ``--tol`` of one output, if the user gave one."""
        return dict(self.per_output).get(name)

    @property
    def names(self) -> tuple[str, ...]:
        """Outputs named by ``--tol``."""
        return tuple(n for n, _ in self.per_output)
