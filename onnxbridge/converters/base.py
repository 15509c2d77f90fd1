"""What every converter shares: the values it takes and returns, and the route loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ConversionError, OnnxBridgeError
from ..results import ConversionResult, RouteAttempt
from ..specs import TensorSpec

if TYPE_CHECKING:
    import onnx

__all__ = [
    "LoadedModel",
    "ExportRequest",
    "ExportedModel",
    "Route",
    "Converter",
    "run_routes",
    "first_line",
]


@dataclass(frozen=True)
class LoadedModel:
    """A source model in memory, with the inputs it will be exported and validated with.

    ``specs`` are the graph inputs (named dynamic axes included) and ``example`` holds one
    concrete array per spec, at the export sizes.
    """

    framework: str
    source: str
    model: Any
    specs: tuple[TensorSpec, ...]
    example: dict[str, Any]
    axis_sizes: dict[str, int] = field(default_factory=dict)
    int_high: int | None = None
    notes: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExportRequest:
    """Options of an export, independent of framework."""

    opset: int | None = None


@dataclass(frozen=True)
class ExportedModel:
    """One route's product."""

    model: onnx.ModelProto
    output_names: tuple[str, ...]
    notes: tuple[str, ...] = ()


class Route(Protocol):
    """One way to export; raises on failure."""

    name: str

    def export(self, loaded: LoadedModel, request: ExportRequest) -> ExportedModel: ...


class Converter(Protocol):
    """A framework plugin: loads its SOURCE forms, offers routes and a reference runner."""

    framework: str
    route_names: tuple[str, ...]  # every route it may offer; a guard test wants a test for each

    def routes(self, loaded: LoadedModel) -> Sequence[Route]: ...

    def reference_runner(self, loaded: LoadedModel): ...


def first_line(e: BaseException, limit: int = 300) -> str:
    """The first meaningful line of an exception message."""
    text = str(e).strip()
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("Traceback", "File ")):
            return f"{type(e).__name__}: {line[:limit]}"
    return type(e).__name__


def run_routes(
    framework: str,
    routes: Sequence[Route],
    loaded: LoadedModel,
    request: ExportRequest,
    *,
    validate: Callable[[ExportedModel], None],
    check_parity: Callable[[ExportedModel], str | None] | None = None,
    failing_op: Callable[[BaseException], str | None] = lambda e: None,
) -> tuple[ExportedModel, ConversionResult]:
    """Try each route in order; the first whose product is valid ONNX (and passes the quick parity
    check, when one is given) wins. If every valid candidate fails parity, the first one is kept so
    that validation can report where it fails (exit 1); if none exports, ``ConversionError`` (exit 3).
    """
    attempts: list[RouteAttempt] = []
    fallback: tuple[ExportedModel, int] | None = None
    t_all = time.perf_counter()
    for route in routes:
        t0 = time.perf_counter()
        try:
            product = route.export(loaded, request)
        except OnnxBridgeError:
            raise
        except Exception as e:  # the route failed: record why, try the next one
            attempts.append(
                RouteAttempt(route.name, False, time.perf_counter() - t0, first_line(e), failing_op(e), exported=False)
            )
            continue
        try:
            validate(product)
        except Exception as e:
            attempts.append(
                RouteAttempt(
                    route.name, False, time.perf_counter() - t0, f"invalid ONNX: {first_line(e)}",
                    failing_op(e), exported=True, valid_onnx=False,
                )
            )
            continue
        reason = check_parity(product) if check_parity else None
        if reason is not None:
            attempts.append(
                RouteAttempt(
                    route.name, False, time.perf_counter() - t0, f"parity: {reason}", None,
                    exported=True, valid_onnx=True, parity=False,
                )
            )
            if fallback is None:
                fallback = (product, len(attempts) - 1)
            continue
        attempts.append(
            RouteAttempt(
                route.name, True, time.perf_counter() - t0, exported=True, valid_onnx=True,
                parity=None if check_parity is None else True,
            )
        )
        return product, _result(framework, route.name, attempts, product, loaded, t_all)
    if fallback is not None:
        product, idx = fallback
        note = f"no route passed parity; keeping the product of {attempts[idx].route} so validation can show where"
        product = ExportedModel(product.model, product.output_names, product.notes + (note,))
        return product, _result(framework, attempts[idx].route, attempts, product, loaded, t_all)
    lines = "; ".join(
        f"{a.route}: {a.error}" + (f" [op: {a.failing_op}]" if a.failing_op else "") for a in attempts
    )
    raise ConversionError(
        f"no route could export the model from {loaded.source} ({lines})",
        "see the routes above; rewrite the failing construct, pass --opset, or run with --debug",
        attempts=tuple(attempts),
    )


def _result(framework, route, attempts, product: ExportedModel, loaded: LoadedModel, t0: float) -> ConversionResult:
    opset = next((o.version for o in product.model.opset_import if o.domain in ("", "ai.onnx")), 0)
    init = {i.name for i in product.model.graph.initializer}
    return ConversionResult(
        framework=framework,
        route=route,
        attempts=tuple(attempts),
        opset=opset,
        input_names=tuple(i.name for i in product.model.graph.input if i.name not in init),
        output_names=tuple(o.name for o in product.model.graph.output),
        seconds=time.perf_counter() - t0,
        notes=loaded.notes + product.notes,
    )
