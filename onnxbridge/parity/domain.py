"""The input domain of a model: what a converter knows of the inputs it may be given.

One value carries what used to travel as the positional triple ``(specs, axis_sizes, int_high)``: the
input specs (named dims are dynamic axes, ranges included), the export size of every axis, the ranges of
the values and ids generated inputs may hold, and the example inputs. Every generated case (validation,
the quick route check, simplify, optimise, variants, fixtures) is drawn from it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np

from ..specs import SizeRange, TensorSpec, declared_ranges
from .inputs import IdRanges

if TYPE_CHECKING:
    import onnx

    from ..options import ParityPlan
    from ..results import ExportedAxis
    from .cases import AxisBounds, InputCase, PlannedCase

__all__ = ["InputDomain"]


@dataclass(frozen=True)
class InputDomain:
    """``specs``: the graph inputs; ``axis_sizes``: the export size of each named axis; ``ids``: what
    generated inputs may hold (id bounds per input, the value range of each user example); ``example``:
    one array per spec at the export sizes (the converter's, or generated)."""

    specs: tuple[TensorSpec, ...]
    axis_sizes: Mapping[str, int] = field(default_factory=dict)
    ids: IdRanges = field(default_factory=IdRanges)
    example: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def of(
        cls,
        specs: tuple[TensorSpec, ...] | list[TensorSpec],
        axis_sizes: Mapping[str, int] | None = None,
        ids: IdRanges | int | Mapping[str, int] | None = None,
        example: Mapping[str, np.ndarray] | None = None,
    ) -> InputDomain:
        """From a converter's findings: ``ids`` as :meth:`IdRanges.of` takes it (one bound, one per input)."""
        from .inputs import default_axis_size

        specs = tuple(specs)
        if axis_sizes is None:
            ranges = declared_ranges(specs)
            axis_sizes = {
                d: ranges[d].clamp(default_axis_size(d)) if d in ranges else default_axis_size(d)
                for s in specs
                for d in s.dims
                if isinstance(d, str)
            }
        return cls(specs, dict(axis_sizes), IdRanges.of(ids), dict(example or {}))

    @property
    def ranges(self) -> dict[str, SizeRange]:
        """The range declared for each dynamic axis (``--input seq=1..24``)."""
        return declared_ranges(self.specs)

    @property
    def masks(self) -> tuple[str, ...]:
        """The inputs generated as attention masks (ones with a random tail of zeros per row)."""
        from .inputs import input_role

        return tuple(s.name for s in self.specs if input_role(s) == "mask")

    def with_ids(self, ids: IdRanges | int | Mapping[str, int] | None) -> InputDomain:
        return replace(self, ids=IdRanges.of(ids))

    def with_example(self, example: Mapping[str, np.ndarray]) -> InputDomain:
        return replace(self, example=dict(example))

    def for_model(self, model: onnx.ModelProto | None) -> InputDomain:
        """The id bounds the ONNX graph's own tables give (each id input's table) over the converter's guess."""
        return self if model is None else replace(self, ids=self.ids.with_graph(model))

    def bounds(self, model: onnx.ModelProto | None = None) -> dict[str, AxisBounds]:
        """What is known of each dynamic axis before the sweep: the range declared in ``--input`` (else the
        one ``model``'s metadata records from its conversion) and the range its exporter recorded."""
        from ..onnxio import read_axis_ranges

        recorded, exported = read_axis_ranges(model) if model is not None else ({}, ())
        return self._bounds({**recorded, **self.ranges}, exported)

    def narrowed_by(self, exported: Sequence[ExportedAxis]) -> bool:
        """Whether ``exported`` (an exporter's recorded ranges) bounds some axis more narrowly than declared:
        only then do the cases, and the verdicts on them, differ from those with no recorded range."""
        return any(b.probes for b in self._bounds(self.ranges, exported).values())

    def _bounds(self, declared: Mapping[str, SizeRange], exported: Sequence[ExportedAxis]) -> dict[str, AxisBounds]:
        from .cases import AxisBounds

        by_axis = {e.axis: e for e in exported}
        out = {}
        for axis, size in self.axis_sizes.items():
            e = by_axis.get(axis)
            out[axis] = AxisBounds(
                axis, size, declared.get(axis, SizeRange()), (e.lo, e.hi) if e else None, e.guard if e else None
            )
        return out

    def cases(self, plan: ParityPlan, model: onnx.ModelProto | None = None) -> list[InputCase]:
        """The planned cases with seeded generated inputs, within each axis's declared and recorded range
        and each id input's table in ``model``."""
        from .cases import generated_cases

        own = self.for_model(model)
        return generated_cases(own.specs, own.axis_sizes, plan, int_high=own.ids, bounds=self.bounds(model))

    def case(self, planned: PlannedCase) -> InputCase:
        """One planned case with its generated inputs (the sweep's smallest runnable size draws through it)."""
        from .cases import generated_case

        return generated_case(planned, self.specs, self.ids)

    def generate(self, sizes: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
        """One seeded set of inputs at ``sizes`` (bench, calibration)."""
        from .inputs import generate_inputs

        return generate_inputs(self.specs, dict(sizes), seed, int_high=self.ids)
