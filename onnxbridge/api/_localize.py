"""The localisation stage: on one case, find the first stage that breaks parity, then the first module,
layer or node inside it that diverges, and extract the minimal failing subgraph.

It takes typed values (the reference, the ONNX stages, the case, :class:`LocalizeOptions`) and returns a
:class:`~onnxbridge.results.Localization`; ``debug`` and ``validate --localize`` call it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._util import first_line
from ..errors import OnnxBridgeError
from ..options import ExportOptions, LocalizeOptions, ParityConfig
from ..results import Localization

if TYPE_CHECKING:
    import onnx

    from ..converters.base import LocalizesLayers, SourceModel
    from ..localize.compare import Scorer
    from ..localize.finding import Finding
    from ..localize.stages import Stage
    from ..parity.domain import InputDomain
    from ..results import Repro

__all__ = ["Reference", "Candidate", "load_reference", "localize_case"]


@dataclass(frozen=True)
class Reference:
    """What the candidates are compared with: a source framework (``loaded``) or an ONNX model."""

    direction: str  # the source's framework, or onnx
    name: str
    runner: Any = field(repr=False)
    loaded: SourceModel[object] | None = field(default=None, repr=False)  # a framework source
    layers: LocalizesLayers | None = field(default=None, repr=False)  # its converter, when it compares layers
    model: onnx.ModelProto | None = field(default=None, repr=False)  # the reference ONNX model
    path: str | None = None


@dataclass(frozen=True)
class Candidate:
    """One ONNX stage of the chain."""

    name: str
    model: onnx.ModelProto = field(repr=False)
    path: str | None = None


class Remembering:
    """A reference runner that keeps its outputs for the feeds it saw (same dict object; up to ``limit``
    bytes), so the stage table reuses the validation's reference run of the localised case (through
    :meth:`replaying`). ``run`` itself always runs: the validation's self-check runs one input twice and
    must see two runs. Everything else is the wrapped runner's (``name``, ``module`` ...)."""

    def __init__(self, runner: Any, limit: int = 256 << 20) -> None:
        self.runner, self.limit = runner, limit
        self._kept: list[tuple[Mapping[str, np.ndarray], list[np.ndarray]]] = []
        self._replay = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runner, name)

    def replaying(self) -> Remembering:
        """The same runner answering the feeds it kept from memory."""
        view = Remembering(self.runner, self.limit)
        view._kept, view._replay = self._kept, True
        return view

    def run(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        for seen, kept in self._kept:
            if seen is feeds and self._replay:
                return kept
        outs: list[np.ndarray] = self.runner.run(feeds)  # the wrapped runner is any Runner
        held = sum(o.nbytes for seen, kept in self._kept if seen is not feeds for o in kept)
        if held + sum(np.asarray(o).nbytes for o in outs) <= self.limit:
            self._kept[:] = [(s, o) for s, o in self._kept if s is not feeds] + [(feeds, outs)]
        return outs


def load_reference(source: str | Path, export: ExportOptions) -> tuple[Reference, InputDomain]:
    """A SOURCE or a reference ``.onnx`` loaded as the reference: (reference, its input domain)."""
    from ..converters.base import LocalizesLayers
    from ..parity.domain import InputDomain

    if str(source).lower().endswith(".onnx"):
        from ..onnxio import input_specs
        from ..runtime.sessions import OrtRunner

        name = Path(source).name
        ort = OrtRunner(source, "cpu", name=f"{name} (onnxruntime cpu)")  # by path: external data stays on disk
        runner, model = Remembering(ort), ort.model
        domain = InputDomain.of(export.inputs or input_specs(model))
        return Reference("onnx", name, runner, model=model, path=str(source)), domain
    from ._stages import load_source

    converter, loaded = load_source(str(source), export)
    runner = Remembering(converter.reference_runner(loaded))
    layers = converter if isinstance(converter, LocalizesLayers) else None
    return Reference(converter.framework, "source", runner, loaded=loaded, layers=layers), loaded.domain


def _stages(reference: Reference, candidates: Sequence[Candidate], provider_used: str) -> list[Stage]:
    """The source, every candidate on ONNX Runtime CPU, and the last one on the provider that validated it."""
    from ..localize.stages import Stage
    from ..runtime.sessions import OrtRunner

    runner = reference.runner.replaying() if isinstance(reference.runner, Remembering) else reference.runner
    stages = [Stage(reference.name, runner, reference.model, reference.path)]
    for c in candidates:
        stages.append(Stage(c.name, OrtRunner(c.model, "cpu", path=c.path), c.model, c.path, "cpu"))
    from ..options.providers import Provider

    on = Provider.from_ort(provider_used) if provider_used else None
    if on is not None and on.is_gpu:
        p = on.name
        last = candidates[-1]
        stages.append(Stage(f"{last.name} on {p}", OrtRunner(last.model, p, path=last.path), last.model, last.path, p))
    return stages


def localize_case(
    reference: Reference,
    candidates: Sequence[Candidate],
    feeds: Mapping[str, np.ndarray],
    case: str,
    parity: ParityConfig,
    options: LocalizeOptions,
    *,
    provider_used: str = "",
    command: str = "",
) -> Localization:
    """Stage bisection on ``feeds``, then localisation between the broken stage and the one before it
    (the reference and the last stage when none is broken, for the per-layer curve)."""
    from ..localize.finding import Finding
    from ..localize.stages import bisect_stages, stage_scorer

    t0 = time.perf_counter()
    stages = _stages(reference, candidates, provider_used)
    bisection = bisect_stages(stages, feeds, parity.tolerances)
    # the ONNX stages' sessions go now: the search opens its own, and each holds the weights
    stages = [s if s.model is None else dataclasses.replace(s, runner=None) for s in stages]
    k = bisection.broken if bisection.broken is not None else len(stages) - 1
    before, after = _with_weights(stages[k - 1]), _with_weights(stages[k])
    scorer = stage_scorer(parity.tolerances, before.model, after.model)
    notes: list[str] = []
    failed = bisection.checks[k - 1].error
    try:
        if failed is not None:
            notes.append(f"'{after.name}' cannot run this case ({failed}): nothing inside it to compare")
            finding = Finding(None, (), 0, 0, 0)
        else:
            finding = _find(reference, before, after, k, feeds, scorer, options, notes)
            if bisection.broken is not None and finding.divergence is None and after.model is not None:
                notes.append(_unobserved_note(stages[0], after, feeds, parity))
    except OnnxBridgeError:
        raise
    except Exception as e:  # keep the stage table: it stands without the layer-by-layer search
        notes.append(f"localisation stopped: {first_line(e, 300)}")
        finding = Finding(None, (), 0, 0, 0)
    repro = _write_repro(finding, options, candidates, scorer, notes)
    return Localization(
        direction=reference.direction if k == 1 else "onnx",
        reference=reference.runner.name if k == 1 else before.name,
        candidate=after.name,
        case=case,
        diverges=finding.divergence is not None,
        first=finding.divergence,
        layers=finding.layers,
        compared=len(finding.layers),
        total=finding.total,
        passes=finding.passes,
        values_marked=finding.values_marked,
        budget_bytes=options.budget_bytes,
        seconds=time.perf_counter() - t0,
        command=command,
        stages=bisection.checks,
        broken_stage=None if bisection.broken is None else stages[bisection.broken].name,
        repro=repro,
        not_mapped=finding.not_mapped,
        notes=tuple(finding.notes) + tuple(notes),
        layer_unit=(
            reference.layers.layer_unit if k == 1 and reference.layers is not None else Localization.layer_unit
        ),
    )


def _with_weights(stage: Stage) -> Stage:
    """The stage with its external weights read into its model: the search marks values on the in-memory
    model (the validation and the stage table ran by path). Over 2 GB: refused."""
    from ..errors import UsageError
    from ..onnxio import TWO_GB, load_weights, uses_external_data, weight_bytes

    if stage.model is None or not uses_external_data(stage.model):
        return stage
    if weight_bytes(stage.model) >= TWO_GB or stage.path is None:
        raise UsageError(
            "localisation marks intermediate values in memory: models over 2 GB are not supported yet",
            "debug a smaller configuration of the model",
        )
    return dataclasses.replace(stage, model=load_weights(stage.model, stage.path))


def _find(
    reference: Reference,
    before: Stage,
    after: Stage,
    k: int,
    feeds: Mapping[str, np.ndarray],
    scorer: Scorer,
    options: LocalizeOptions,
    notes: list[str],
) -> Finding:
    """The direction that applies: the source framework against the first ONNX stage, else ONNX vs ONNX."""
    from ..localize.finding import Finding

    if k > 1 or before.model is not None:
        from ..localize.onnx_side import localize_onnx

        return localize_onnx(
            before.onnx_model,
            after.onnx_model,
            feeds,
            scorer,
            budget_bytes=options.budget_bytes,
            provider_a=before.provider,
            provider_b=after.provider,
        )
    if reference.layers is not None and reference.loaded is not None:
        return reference.layers.localize_layers(
            reference.loaded,
            reference.runner,
            feeds,
            after.onnx_model,
            scorer,
            budget_bytes=options.budget_bytes,
            provider=after.provider,
        )
    notes.append(
        f"layer-by-layer comparison with a {reference.direction} source is not supported: the stage "
        "table says which stage breaks; compare two ONNX files with onnxbridge debug A.onnx B.onnx"
    )
    return Finding(None, (), 0, 0, 0)


def _unobserved_note(source: Stage, broken: Stage, feeds: Mapping[str, np.ndarray], parity: ParityConfig) -> str:
    """The stage fails, yet no module, layer or node diverges once values are observed: is it a fusion?"""
    from ..localize.stages import stage_scorer
    from ..runtime.sessions import OrtRunner
    from ..runtime.timing import session_options

    plain = OrtRunner(broken.onnx_model, broken.provider, options=session_options(None, "disable"))
    ref = source.runner.run(dict(feeds))
    got = plain.run(dict(feeds))
    scorer = stage_scorer(parity.tolerances, source.model, broken.model)
    ok = len(ref) == len(got) and all(
        scorer.diff(n, r, g, output=n).passed for n, r, g in zip(plain.output_names, ref, got)
    )
    if ok:
        return (
            f"'{broken.name}' matches with ONNX Runtime's graph optimisations disabled: the difference comes "
            "from a fusion ONNX Runtime applies, which marking intermediate values switches off"
        )
    return (
        "no module, layer or node diverges once intermediate values are observed, although the outputs do: "
        "marking values changes ONNX Runtime's fusions; compare with --provider cpu or other inputs"
    )


def _write_repro(
    finding: Finding, options: LocalizeOptions, candidates: Sequence[Candidate], scorer: Scorer, notes: list[str]
) -> Repro | None:
    """The minimal failing subgraph, written where asked (nothing is written without a folder)."""
    if finding.repro is None or finding.divergence is None:
        return None
    if options.repro_dir is None:
        notes.append("pass --repro-dir DIR (or --report) to write the minimal failing subgraph")
        return None
    from ..localize.extract import write_repro

    stem = Path(candidates[-1].path or "model").stem + ".repro"
    try:
        return write_repro(finding.repro, options.repro_dir, stem, scorer)
    except (ValueError, OSError) as e:  # onnx checker errors are ValueErrors too
        notes.append(f"the minimal failing subgraph could not be extracted: {first_line(e, 200)}")
    except Exception as e:  # ONNX Runtime refusing the subgraph
        notes.append(f"the minimal failing subgraph does not run on its own: {first_line(e, 200)}")
    return None
