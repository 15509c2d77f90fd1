"""Stage bisection: which step of source -> exported -> simplified -> variant -> provider broke parity.

Every stage runs once on the same inputs and is compared with the *source* (the verdict users care
about) and with the *stage before it* (whether that step itself moved the numbers). The first stage that
fails against the source is the broken one; localisation then runs between it and the stage before.
Stages are few, so all of them run: a bisection over them would save little and lose the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .._util import first_line
from ..errors import OnnxBridgeError
from ..options import Tolerances
from ..results.localize import StageCheck
from .compare import Scorer, TensorDiff

if TYPE_CHECKING:
    import onnx

__all__ = ["Stage", "Bisection", "bisect_stages", "stage_scorer"]


@dataclass(frozen=True)
class Stage:
    """One step of the chain: a runner (the source framework, or an ONNX model on a provider)."""

    name: str
    runner: Any  # the runner protocol: output_names, run(feeds) -> list of arrays
    model: onnx.ModelProto | None = field(default=None, repr=False)  # None: the source framework
    path: str | None = None
    provider: str = "cpu"

    @property
    def onnx_model(self) -> onnx.ModelProto:
        """The stage's ONNX model: every stage but the source framework has one."""
        if self.model is None:
            raise ValueError(f"stage {self.name} is the source framework: it has no ONNX model")
        return self.model


@dataclass(frozen=True)
class Bisection:
    checks: tuple[StageCheck, ...]  # one per stage after the source
    broken: int | None  # index (in the stages) of the first one failing against the source


def stage_scorer(tolerances: Tolerances, *models: onnx.ModelProto | None) -> Scorer:
    """A scorer judging at the narrowest float any of ``models`` computes in (fp16 stages: fp16 tolerances)."""
    from ..parity.metrics import looser_dtype
    from ..parity.sweep import compute_dtype

    narrow = [d for d in (compute_dtype(m) for m in models if m is not None) if d]
    dtype = looser_dtype(*narrow) if narrow else None
    return Scorer(tolerances, None if dtype is None else dtype.name)


def _worst(diffs: Sequence[TensorDiff]) -> TensorDiff | None:
    return max(diffs, key=lambda d: d.score, default=None)


def _compare(ref: list[np.ndarray], got: list[np.ndarray], names: Sequence[str], scorer: Scorer) -> list[TensorDiff]:
    if len(ref) != len(got):
        inf = float("inf")
        return [TensorDiff("outputs", (), inf, inf, inf, 1.0, 0.0, 0.0, f"{len(got)} outputs for {len(ref)}")]
    return [scorer.diff(n, r, g, output=n) for n, r, g in zip(names, ref, got)]


def bisect_stages(stages: Sequence[Stage], feeds: Mapping[str, np.ndarray], tolerances: Tolerances) -> Bisection:
    """Run every stage on ``feeds``; compare each with the source and with the stage before it."""
    outs: list[list[np.ndarray] | None] = []
    errors: list[str | None] = []
    for s in stages:
        try:
            outs.append(list(s.runner.run(feeds)))
            errors.append(None)
        except OnnxBridgeError:
            raise
        except Exception as e:  # a stage that cannot run this case is broken, and says why
            outs.append(None)
            errors.append(first_line(e, 300))
    if outs[0] is None:
        raise RuntimeError(f"the reference ({stages[0].name}) cannot run the case: {errors[0]}")
    checks: list[StageCheck] = []
    broken = None
    for k in range(1, len(stages)):
        s, got = stages[k], outs[k]
        names = tuple(s.runner.output_names)
        if got is None:
            checks.append(StageCheck(s.name, s.path, s.provider, False, float("inf"), float("inf"), error=errors[k]))
            broken = k if broken is None else broken
            continue
        vs_src = _worst(_compare(outs[0], got, names, stage_scorer(tolerances, s.model)))
        step = None
        before = outs[k - 1] if k > 1 else None
        if before is not None:
            step = _worst(_compare(before, got, names, stage_scorer(tolerances, s.model, stages[k - 1].model)))
        passed = vs_src is None or vs_src.passed
        checks.append(
            StageCheck(
                s.name,
                s.path,
                s.provider,
                passed,
                vs_src.score if vs_src else 0.0,
                vs_src.max_abs if vs_src else 0.0,
                None if step is None else step.passed,
                None if step is None else step.score,
                note=(vs_src.note or None) if vs_src else None,
            )
        )
        if not passed and broken is None:
            broken = k
    return Bisection(tuple(checks), broken)
