"""The routes of a with-past decoder export, tried in ``--route`` order: the exporters (TorchScript, then
torch.export/dynamo, :mod:`.export`), each checked against the model in PyTorch, then ONNX Runtime GenAI's
model builder (:mod:`.genai`), judged on generation parity. The first that passes wins; the others' attempts
say why they lost."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import UsageError

__all__ = ["WITH_PAST_ROUTES", "export_routes"]

# --route for a decoder with its cache, tried in this order by default: the exporters, then ONNX Runtime
# GenAI's model builder (a lost route "not installed" without the genai extra)
WITH_PAST_ROUTES = ("torchscript", "torch.export/dynamo", "genai")


def export_routes(
    model: Any, src: Path, scratch: Path, options: Any, judge: Callable[[Path], Any] | None
) -> tuple[Any, Any]:
    """(the winning :class:`~.export.ExportedDecoder`, the generation verdict that judged it when the route
    was judged on generation) of the first route in ``--route`` order (default :data:`WITH_PAST_ROUTES`)
    that passes: the exporters' routes checked against the model in PyTorch, the GenAI builder's by
    ``judge(folder)`` (generation parity; None: not validated)."""
    import itertools

    from ..errors import ConversionError
    from .export import ExportedDecoder, export_with_past
    from .genai import ROUTE, genai_route

    routes = options.export.routes or WITH_PAST_ROUTES
    unknown = [r for r in routes if r not in WITH_PAST_ROUTES]
    if unknown:
        raise UsageError(
            f"unknown --route {unknown[0]!r} for a with-past export", f"routes: {', '.join(WITH_PAST_ROUTES)}"
        )
    attempts: list[Any] = []
    reasons: list[str] = []
    t0 = time.perf_counter()
    for is_genai, group in itertools.groupby(routes, key=lambda r: r == ROUTE):
        if is_genai:
            got = genai_route(src, scratch, judge)
            attempts.append(got.attempt)
            if got.layout is not None:
                done = ExportedDecoder(
                    ROUTE, tuple(attempts), scratch / "model.onnx", got.layout, got.opset, time.perf_counter() - t0
                )
                return done, got.generation
            continue
        try:
            exported = export_with_past(
                model,
                scratch / "model.onnx",
                opset=options.export.opset or 18,
                routes=tuple(group),
                debug=options.export.debug,
            )
        except ConversionError as e:
            attempts += e.attempts
            reasons += [] if e.attempts else [e.message]
            continue
        return replace(exported, attempts=(*attempts, *exported.attempts), seconds=time.perf_counter() - t0), None
    lines = "; ".join([*reasons, *(f"{a.route}: {a.error}" for a in attempts)])
    raise ConversionError(
        f"no route exported {type(model).__name__} with its KV cache ({lines})",
        "try --task text-generation (no cache), or --debug for the exporters' output",
        attempts=tuple(attempts),
    )
