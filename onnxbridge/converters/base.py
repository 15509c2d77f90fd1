"""What every converter shares: the values it takes and returns, and the route loop."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, runtime_checkable

from .._util import first_line, summarize_error
from ..errors import ConversionError, OnnxBridgeError, UsageError
from ..parity.domain import InputDomain
from ..parity.inputs import IdRanges
from ..results import ConversionResult, ExportedAxis, RouteAttempt
from ..specs import TensorSpec

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from ..localize.compare import Scorer
    from ..localize.finding import Finding
    from ..runtime.sessions import Runner
    from ..sources import SourceRef

__all__ = [
    "SourceModel",
    "InputDomain",
    "LoadedModel",
    "ReportsFailingOp",
    "TakesTask",
    "LocalizesLayers",
    "ExportRequest",
    "ExportedModel",
    "PendingRanges",
    "Route",
    "Converter",
    "run_routes",
    "pick_routes",
    "merge_specs",
    "axis_sizes",
]


S_co = TypeVar("S_co", covariant=True)  # the converter's own state; stages see SourceModel[object]


@dataclass(frozen=True)
class SourceModel(Generic[S_co]):
    """What a converter hands the stages: a source model in memory and the inputs it is checked over.

    ``model`` is the framework's own object (opaque to the stages); ``domain`` the inputs (specs, export
    sizes, id and value ranges, the example at the export sizes); ``state`` what the converter itself
    needs again (how ``forward`` is called, output names ...), of the type the converter declares.
    """

    framework: str
    source: str
    model: Any  # the framework's object (an nn.Module, a Keras model, a function): opaque here
    domain: InputDomain
    state: S_co
    notes: tuple[str, ...] = ()

    @property
    def specs(self) -> tuple[TensorSpec, ...]:
        return self.domain.specs

    @property
    def example(self) -> Mapping[str, np.ndarray]:
        return self.domain.example

    @property
    def axis_sizes(self) -> Mapping[str, int]:
        return self.domain.axis_sizes


def LoadedModel(
    framework: str,
    source: str,
    model: Any,
    specs: Sequence[TensorSpec],  # noqa: N802
    example: Mapping[str, np.ndarray],
    axis_sizes: Mapping[str, int] | None = None,
    int_high: IdRanges | int | Mapping[str, int] | None = None,
    notes: tuple[str, ...] = (),
    state: object = None,
) -> SourceModel[object]:
    """A :class:`SourceModel` from the fields a plugin gives (the form docs/plugins.md shows)."""
    return SourceModel(
        framework, source, model, InputDomain.of(tuple(specs), axis_sizes, int_high, example), state, notes
    )


@dataclass(frozen=True)
class ExportRequest:
    """Options of an export, independent of framework.

    ``save_to``: where a route may save its product as a file (a large model, or any model when
    ``external_data`` is set), its weights in external data beside it (``NAME.onnx.data``), and
    return it loaded without its weights (``ExportedModel.path`` set). Each route gets a folder
    of its own. ``debug``: let the exporters' own output through to the terminal.
    """

    opset: int | None = None
    save_to: Path | None = None
    external_data: bool = False
    debug: bool = False


class PendingRanges(Protocol):
    """What a route still works out beside its export (the TorchScript route's torch.export probe): the
    product's axis ranges, and whether the route stands by it at all."""

    def result(self) -> tuple[ExportedAxis, ...]:
        """The ranges (waits for them); raises, as the route's export would have, when the answer
        refuses the product (a branch on tensor values that tracing froze)."""
        ...

    def cancel(self) -> None:
        """They are no longer wanted (the product lost)."""
        ...


@dataclass(frozen=True)
class ExportedModel:
    """One route's product; ``path`` is set when it lives in a file (weights in external data);
    ``axis_ranges``: the range of sizes the exporter recorded per dynamic axis, when it says;
    ``pending_ranges``: set instead while the route still works them out. The route loop checks the
    product meanwhile, then settles it (:meth:`settled`), so no product leaves the loop pending."""

    model: onnx.ModelProto
    output_names: tuple[str, ...]
    notes: tuple[str, ...] = ()
    path: Path | None = None
    axis_ranges: tuple[ExportedAxis, ...] = ()
    pending_ranges: PendingRanges | None = dataclasses.field(default=None, compare=False, repr=False)

    def settled(self) -> ExportedModel:
        """This product with its axis ranges in (waiting for them if the route is still at work)."""
        if self.pending_ranges is None:
            return self
        return dataclasses.replace(self, axis_ranges=self.pending_ranges.result(), pending_ranges=None)

    def discard(self) -> None:
        """This product lost: stop whatever still works out its ranges."""
        if self.pending_ranges is not None:
            self.pending_ranges.cancel()


class Route(Protocol):
    """One way to export; raises on failure."""

    name: str

    def export(self, loaded: SourceModel[Any], request: ExportRequest) -> ExportedModel: ...


@runtime_checkable
class Converter(Protocol):
    """A framework plugin: loads its SOURCE forms, offers routes and a reference runner.

    Optional capabilities are the protocols below (a converter opts in by having the method or
    attribute): :class:`ReportsFailingOp`, :class:`TakesTask`, :class:`LocalizesLayers`.
    """

    framework: str
    route_names: tuple[str, ...]  # every route it may offer; a guard test wants a test for each

    def load(
        self, ref: SourceRef, specs: tuple[TensorSpec, ...] = (), *, trust: bool = False, obj: Any = None
    ) -> SourceModel[Any]: ...

    def routes(self, loaded: SourceModel[Any]) -> Sequence[Route]: ...

    def reference_runner(self, loaded: SourceModel[Any]) -> Runner: ...


@runtime_checkable
class ReportsFailingOp(Protocol):
    """Names the op or construct an exporter error is about (``aten::nonzero``), for the route table."""

    def failing_op(self, e: BaseException) -> str | None: ...


@runtime_checkable
class TakesTask(Protocol):
    """Loads a source for one of several tasks (``--task``: a Hugging Face head); ``tasks`` lists them."""

    tasks: tuple[str, ...]

    def load(
        self,
        ref: SourceRef,
        specs: tuple[TensorSpec, ...] = (),
        *,
        trust: bool = False,
        obj: Any = None,
        task: str | None = None,
    ) -> SourceModel[Any]: ...


@runtime_checkable
class LocalizesLayers(Protocol):
    """Compares the source's own layers (module calls, Keras layer calls) with the ONNX model's values on
    ``feeds``, to say where parity breaks; ``layer_unit`` names what is compared, for the plot's axis."""

    layer_unit: str

    def localize_layers(
        self,
        loaded: SourceModel[Any],
        runner: Runner,
        feeds: Mapping[str, np.ndarray],
        onnx_model: onnx.ModelProto,
        scorer: Scorer,
        *,
        budget_bytes: int,
        provider: str,
    ) -> Finding: ...


def merge_specs(found: Sequence[TensorSpec], given: Sequence[TensorSpec], where: str) -> tuple[TensorSpec, ...]:
    """The inputs a model declares (``found``), renamed and fixed by ``--input`` (``given``), by position.

    Each given spec must have the rank of its input and keep the sizes the model fixes.
    """
    if not given:
        return tuple(found)
    if len(given) != len(found):
        raise UsageError(
            f"{len(given)} --input given but {where} takes {len(found)} ({', '.join(s.name for s in found)})",
            "give one --input per input, in the order the model takes them",
        )
    for g, f in zip(given, found):
        if len(g.dims) != len(f.dims):
            raise UsageError(f"--input {g} has rank {len(g.dims)} but input '{f.name}' is {f}", "one dim per axis")
        for gd, fd in zip(g.dims, f.dims):
            if isinstance(fd, int) and gd != fd:
                raise UsageError(f"--input {g} does not fit input '{f.name}' ({f})", "the model fixes that axis")
    return tuple(given)


def axis_sizes(specs: Sequence[TensorSpec], example: Mapping[str, Any] | None = None) -> dict[str, int]:
    """The export size of every named axis: read from ``example`` (one array per spec, by name), else
    the default sizes. Each example array must fit its spec: same rank, same fixed sizes, and one
    size per axis name across all inputs.
    """
    from ..parity.inputs import default_axis_size
    from ..specs import declared_ranges

    ranges = declared_ranges(list(specs))
    sizes: dict[str, int] = {}
    for s in specs:
        if example is None:
            for d in s.dims:
                if isinstance(d, str):
                    sizes.setdefault(d, ranges[d].clamp(default_axis_size(d)) if d in ranges else default_axis_size(d))
            continue
        shape = [int(n) for n in example[s.name].shape]
        if len(s.dims) != len(shape):
            raise UsageError(
                f"--input {s} has rank {len(s.dims)} but the example input has shape {shape}",
                "give one dim per axis of the example input",
            )
        for d, real in zip(s.dims, shape):
            if isinstance(d, int) and d != real:
                raise UsageError(
                    f"--input {s} does not fit the example input of shape {shape}",
                    "fixed dims must equal the example's sizes",
                )
            if isinstance(d, str) and sizes.setdefault(d, real) != real:
                raise UsageError(f"axis {d!r} has two sizes in the example inputs: {sizes[d]} and {real}")
            if isinstance(d, str) and d in ranges and real not in ranges[d]:
                raise UsageError(
                    f"--input {s}: the example input has {d}={real}, outside the declared range {d}={ranges[d]}",
                    "widen the range so that it holds the example's size, or change the example",
                )
    return sizes


def pick_routes(available: Sequence[Route], wanted: Sequence[str] | None) -> list[Route]:
    """The routes named in ``wanted`` (``--route``), in that order; all of them when nothing is named."""
    if not wanted:
        return list(available)
    by_name = {r.name: r for r in available}
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        raise UsageError(f"unknown route(s) {', '.join(unknown)} for this source", f"routes: {', '.join(by_name)}")
    return [by_name[w] for w in wanted]


def run_routes(
    framework: str,
    routes: Sequence[Route],
    loaded: SourceModel[object],
    request: ExportRequest,
    *,
    validate: Callable[[ExportedModel], object],  # raises when the product is not valid; what it returns is unused
    check_parity: Callable[[ExportedModel], str | None] | None = None,
    failing_op: Callable[[BaseException], str | None] = lambda e: None,
    meanwhile: Callable[[ExportedModel], object] | None = None,
) -> tuple[ExportedModel, ConversionResult]:
    """Try each route in order; the first whose product is valid ONNX (and passes the quick parity
    check, when one is given) wins. If every valid candidate fails parity, the first one is kept so
    that validation can report where it fails (exit 1); if none exports, ``ConversionError`` (exit 3).

    ``meanwhile(product)`` runs on a product that passed both checks while its route still works out its
    ranges (``pending_ranges``), before the loop waits for them: the caller's next stage, started early
    (it must not depend on the ranges, or must redo what does once they are in).
    """
    attempts: list[RouteAttempt] = []
    fallback: tuple[ExportedModel, int] | None = None
    t_all = time.perf_counter()
    for i, route in enumerate(routes):
        own = request
        if request.save_to is not None:  # a failed route's files never stand in for another's
            folder = request.save_to.parent / f"route{i}"
            folder.mkdir(parents=True, exist_ok=True)
            own = dataclasses.replace(request, save_to=folder / request.save_to.name)
        attempt, product = _try_route(route, loaded, own, validate, check_parity, failing_op, meanwhile)
        attempts.append(attempt)
        if product is None:
            continue
        if attempt.ok:
            return product, _result(framework, route.name, attempts, product, loaded, t_all, routes)
        if attempt.parity is False and fallback is None:
            fallback = (product, len(attempts) - 1)
    if fallback is not None:
        product, idx = fallback
        note = f"no route passed parity; keeping the product of {attempts[idx].route} so validation can show where"
        product = dataclasses.replace(product, notes=product.notes + (note,))
        return product, _result(framework, attempts[idx].route, attempts, product, loaded, t_all, routes)
    lines = "; ".join(f"{a.route}: {a.error}" + (f" [op: {a.failing_op}]" if a.failing_op else "") for a in attempts)
    raise ConversionError(
        f"no route could export the model from {loaded.source} ({lines})",
        "see the routes above; rewrite the failing construct, pass --opset, or run with --debug",
        attempts=tuple(attempts),
    )


def _try_route(
    route: Route,
    loaded: SourceModel[object],
    request: ExportRequest,
    validate: Callable[[ExportedModel], object],
    check_parity: Callable[[ExportedModel], str | None] | None,
    failing_op: Callable[[BaseException], str | None],
    meanwhile: Callable[[ExportedModel], object] | None = None,
) -> tuple[RouteAttempt, ExportedModel | None]:
    """Export through one route, check the product, and say how far it got (and why not further)."""
    t0 = time.perf_counter()
    try:
        product = route.export(loaded, request)
    except OnnxBridgeError:
        raise
    except Exception as e:  # the route failed: record why (what and where), the caller tries the next one
        return _export_failed(route, loaded, e, t0, failing_op), None
    try:
        validate(product)
    except Exception as e:
        product.discard()
        return RouteAttempt(
            route.name,
            False,
            time.perf_counter() - t0,
            f"invalid ONNX: {first_line(e)}",
            failing_op(e),
            exported=True,
            valid_onnx=False,
        ), None
    reason = check_parity(product) if check_parity else None
    if reason is None and meanwhile is not None and product.pending_ranges is not None:
        meanwhile(product)
    try:  # what the route worked out while its product was checked
        product = product.settled()
    except OnnxBridgeError:
        raise
    except Exception as e:
        return _export_failed(route, loaded, e, t0, failing_op), None
    if reason is not None:
        return RouteAttempt(
            route.name,
            False,
            time.perf_counter() - t0,
            f"parity: {reason}",
            None,
            exported=True,
            valid_onnx=True,
            parity=False,
        ), product
    return RouteAttempt(
        route.name,
        True,
        time.perf_counter() - t0,
        exported=True,
        valid_onnx=True,
        parity=None if check_parity is None else True,
    ), product


def _export_failed(
    route: Route,
    loaded: SourceModel[object],
    error: Exception,
    t0: float,
    failing_op: Callable[[BaseException], str | None],
) -> RouteAttempt:
    """The attempt of a route whose export raised: why (what and where); the caller tries the next one."""
    why = summarize_error(error, [s.name for s in loaded.specs]).text()
    return RouteAttempt(route.name, False, time.perf_counter() - t0, why, failing_op(error), exported=False)


def _result(
    framework: str,
    route: str,
    attempts: Sequence[RouteAttempt],
    product: ExportedModel,
    loaded: SourceModel[object],
    t0: float,
    routes: Sequence[Route],
) -> ConversionResult:
    from ..onnxio import main_opset

    order = tuple(r.name for r in routes)
    not_tried = order[len(attempts) :]
    notes = (
        (f"routes not tried: {', '.join(not_tried)} ({route} passed first; order: {' > '.join(order)})",)
        if not_tried
        else ()
    )
    opset = main_opset(product.model)
    init = {i.name for i in product.model.graph.initializer}
    return ConversionResult(
        framework=framework,
        route=route,
        attempts=tuple(attempts),
        opset=opset,
        input_names=tuple(i.name for i in product.model.graph.input if i.name not in init),
        output_names=tuple(o.name for o in product.model.graph.output),
        seconds=time.perf_counter() - t0,
        notes=loaded.notes + product.notes + notes,
        axis_ranges=product.axis_ranges,
        route_order=order,
        not_tried=not_tried,
    )
