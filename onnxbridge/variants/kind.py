"""A variant kind as one declaration, and the explicit registry the stage, the options and the reports read.

Adding a kind is one module under ``variants/kinds/`` that declares ``KIND = VariantKind(...)`` (its
builder, default budget, speed rule, file name, notes and report table) plus one ``KINDS.register``
line in ``variants/registry.py``; a test can build its own :class:`VariantKinds` and pass it to the stage.
A kind that also has a form for a with-past decoder folder declares it as ``folder=FolderForm(...)``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..options import GENERATION_METRICS, Budget

if TYPE_CHECKING:
    from ..options import VariantOptions
    from ..results import VariantResult
    from ..results.table import Table
    from .build import BuildContext, Built

__all__ = ["FolderForm", "VariantKind", "VariantKinds", "VariantTarget"]

Builder = Callable[[Any, Path, Path, "BuildContext"], "Built"]
FolderBuilder = Callable[[Path, Path], "Built"]


class VariantTarget(str, enum.Enum):
    """What a variant is built from: one ONNX file, or a with-past decoder folder (optimum's layout:
    ``model.onnx`` with ``past_key_values.*``, config and tokenizer files beside it)."""

    ONNX_FILE = "onnx-file"
    WITH_PAST_FOLDER = "with-past-folder"

    @classmethod
    def of(cls, path: Path) -> VariantTarget:
        """A folder is a with-past folder (the folder stage checks its graph), anything else a file."""
        return cls.WITH_PAST_FOLDER if Path(path).is_dir() else cls.ONNX_FILE

    def metrics_ok(self, metric: str) -> bool:
        """Whether a budget metric judges this target (generation metrics judge folders only)."""
        return (metric in GENERATION_METRICS) == (self is VariantTarget.WITH_PAST_FOLDER)


@dataclass(frozen=True)
class FolderForm:
    """A kind's form for a with-past decoder folder: ``build(fp32_folder, new_folder)`` writes the whole
    copy (graph and every other file) and says how; ``budget`` holds the generation limits
    (``token_agreement``, ``logit_drift``, ``perplexity_ratio``)."""

    build: FolderBuilder
    budget: Budget


def _no_notes(options: VariantOptions) -> tuple[str, ...]:
    return ()


def _no_table(result: VariantResult) -> Table | None:
    return None


@dataclass(frozen=True)
class VariantKind:
    """Everything that differs between variant kinds.

    ``build(model, src, dst, ctx)`` writes the variant (raising ``VariantUnavailable`` when it cannot);
    ``budget`` / ``min_speedup`` are the defaults stated in every report (``None``: timed, not gated on
    speed); ``suffix`` ends the file name (``model.int8.onnx``); ``must_quantise`` names what the tool must
    have quantised (nothing quantised: unavailable, with ``empty_hint``); ``trt_fp16`` builds TensorRT
    engines in fp16; ``onnx_file`` False writes the file alone (no external data); ``notes(options)``
    and ``table(result)`` add the kind's own lines and table to the report.
    """

    name: str
    build: Builder
    budget: Budget
    summary: str
    min_speedup: float | None = 1.0
    suffix: str = ""
    must_quantise: str | None = None
    empty_hint: str = ""
    trt_fp16: bool = False
    onnx_file: bool = True
    notes: Callable[[VariantOptions], tuple[str, ...]] = _no_notes
    table: Callable[[VariantResult], Table | None] = _no_table
    folder: FolderForm | None = None

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.strip().lower() or "," in self.name:
            raise ValueError(f"variant kind name {self.name!r} must be lower-case, without commas or spaces")
        if not self.suffix:
            object.__setattr__(self, "suffix", f".{self.name}.onnx")

    def filename(self, model_path: Path) -> str:
        """``model.int8.onnx``, ``model.fp16.onnx``, ... ``model.ort``."""
        return f"{Path(model_path).stem}{self.suffix}"

    def supports(self, target: VariantTarget) -> bool:
        return target is VariantTarget.ONNX_FILE or self.folder is not None

    def folder_name(self, folder: Path) -> str:
        """``llama-onnx-int4``: the copy of a with-past folder, a sibling named after it."""
        return f"{Path(folder).name}-{self.name}"

    def budget_for(self, options: VariantOptions, target: VariantTarget = VariantTarget.ONNX_FILE) -> Budget:
        """The kind's default budget for ``target`` with the user's ``--budget`` limits over it; a limit
        that does not judge ``target`` (``token_agreement`` on a file, ``cosine`` on a folder) is exit 2."""
        for metric, _ in options.budget:
            if not target.metrics_ok(metric):
                raise UsageError(
                    f"--budget {metric} does not judge a {target.value}",
                    f"a with-past folder is judged on {', '.join(GENERATION_METRICS)}; a file on its outputs",
                )
        base = self.folder.budget if target is VariantTarget.WITH_PAST_FOLDER and self.folder else self.budget
        return Budget(tuple({**base.as_dict(), **dict(options.budget)}.items()))

    def speed_rule(self, options: VariantOptions) -> float | None:
        """The minimum p50 speed-up over fp32 (None: not gated); ``--min-speedup`` wins, 0 turns it off."""
        if options.min_speedup is not None:
            return options.min_speedup or None
        return self.min_speedup


class VariantKinds:
    """An explicit registry of variant kinds, in registration order; a second kind of one name is an error."""

    def __init__(self, kinds: Sequence[VariantKind] = ()) -> None:
        self._kinds: dict[str, VariantKind] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: VariantKind) -> VariantKind:
        if kind.name in self._kinds:
            raise ValueError(f"variant kind {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind
        return kind

    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def __iter__(self) -> Iterator[VariantKind]:
        return iter(self._kinds.values())

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def get(self, name: str) -> VariantKind:
        """The kind of that name; an unknown one is a usage error (exit 2) listing the known ones."""
        kind = self._kinds.get(name)
        if kind is None:
            raise UsageError(f"unknown variant {name!r}", f"use one of {', '.join(self._kinds)}")
        return kind

    def resolve(self, names: Sequence[str], target: VariantTarget = VariantTarget.ONNX_FILE) -> tuple[VariantKind, ...]:
        """The kinds of ``names``; one without a form for ``target`` is a usage error naming those with one."""
        kinds = tuple(self.get(n) for n in names)
        for kind in kinds:
            if not kind.supports(target):
                able = [k.name for k in self if k.supports(target)]
                raise UsageError(
                    f"variant {kind.name!r} has no {target.value} form",
                    f"for a {target.value} use {', '.join(able) or 'no variant'}",
                )
        return kinds

    def help(self) -> str:
        """``fp16, bf16, int8, ...`` for ``--help``."""
        return ", ".join(self._kinds)
