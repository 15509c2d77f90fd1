"""Results of localisation: where a candidate first leaves its reference, and which stage broke parity."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SourceLine", "LayerCheck", "Divergence", "StageCheck", "Repro", "Localization"]


@dataclass(frozen=True)
class SourceLine:
    """A line of the user's Python source (from the exporter's metadata, or a class definition)."""

    file: str
    line: int
    code: str = ""
    function: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class LayerCheck:
    """One module or layer call (or one ONNX value) compared: a point of the per-layer plot.

    ``score`` is ``max |candidate - reference| / (atol + rtol * |reference|)`` over its outputs: above 1
    fails. ``position`` orders the checks along the model (completion order of calls, topological
    order of values); ``depth`` is the nesting depth (0: the top).
    """

    name: str
    kind: str
    depth: int
    position: int
    score: float | None
    input_score: float | None = None
    max_abs: float | None = None
    passed: bool | None = None
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Divergence:
    """The first place where the candidate leaves the reference.

        ``kind``: ``module`` (PyTorch), ``layer`` (Keras) or ``node`` (ONNX vs ONNX). ``where`` says
        whether the call's own ops diverge, or its parent's code just before it (``own ops before it calls
        X``). ``call_site`` is the source line the exporter recorded for its ONNX nodes, ``source`` the
        definition of its class. ``also_suspect``: calls that ran just before it and have no ONNX node of
        their own (an exporter folded them into it: Conv+BatchNorm). ``module``: for an ONNX node, the source
    module its metadata names.
    """

    name: str
    kind: str
    class_name: str
    where: str
    onnx_nodes: tuple[str, ...]
    score: float
    input_score: float | None = None
    max_abs: float | None = None
    call_site: SourceLine | None = None
    source: SourceLine | None = None
    also_suspect: tuple[str, ...] = ()
    module: str | None = None
    reference_value: str | None = None
    candidate_value: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class StageCheck:
    """One stage of the chain on the localised case: against the source, and against the stage before."""

    stage: str
    model: str | None
    provider: str
    passed: bool
    score: float
    max_abs: float
    step_passed: bool | None = None
    step_score: float | None = None
    error: str | None = None  # the stage could not run the case
    note: str | None = None  # NaN / Inf on one side only, a size mismatch


@dataclass(frozen=True)
class Repro:
    """The minimal failing subgraph: a standalone ONNX file and the fixtures that show the difference."""

    onnx: str
    fixtures: str
    nodes: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    bytes: int
    reproduces: bool
    score: float
    max_abs: float
    command: str


@dataclass(frozen=True)
class Localization:
    """Where parity breaks: the first diverging stage, the first diverging module / layer / node in
    it, what was compared (the per-layer checks), and how to reproduce it."""

    direction: str  # the reference: pytorch | keras | onnx
    reference: str
    candidate: str
    case: str
    diverges: bool
    first: Divergence | None
    layers: tuple[LayerCheck, ...]
    compared: int
    total: int
    passes: int
    values_marked: int
    budget_bytes: int
    seconds: float
    command: str
    stages: tuple[StageCheck, ...] = ()
    broken_stage: str | None = None
    repro: Repro | None = None
    not_mapped: int = 0
    notes: tuple[str, ...] = ()
    layer_unit: str = "ONNX values, in topological order"  # what ``layers`` compares, in order (the plot's axis)

    def summary(self) -> str:
        """One line: the broken stage and the first diverging place, or that nothing diverges."""
        stage = f"stage '{self.broken_stage}' breaks parity; " if self.broken_stage else ""
        if not self.diverges or self.first is None:
            return stage + f"nothing diverges beyond tolerance ({self.compared} compared)"
        f = self.first
        at = f" at {f.call_site}" if f.call_site else (f" (defined at {f.source})" if f.source else "")
        return (
            f"{stage}first diverging {f.kind}: {f.name} [{f.class_name}]{at}, {f.where}; "
            f"score {f.score:.3g} (> 1 fails)"
        )
