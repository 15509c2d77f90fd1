"""Export a transformers causal LM with its KV cache as one graph (prefill and every decode step).

A wrapper takes the flat past tensors, builds transformers' :class:`~transformers.DynamicCache` from
them (every layer a full layer: a sliding window is applied by the attention mask, so the graph's past
keeps growing as optimum's does) and returns the logits and the flat present. Two routes export it:
TorchScript tracing and torch.export/dynamo; each product is checked against the wrapper in PyTorch at
a prefill (past 0, left padding) and a decode step at sizes the export did not use, and the first that
passes wins.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._util import first_line, quiet
from ..errors import ConversionError
from ..results import RouteAttempt
from .layout import BATCH, PAST, SEQ, TOTAL, CacheLayout, KvShape

__all__ = ["ROUTES", "ExportedDecoder", "WithPastWrapper", "cache_layout", "export_with_past"]

ROUTES = ("torchscript", "torch.export/dynamo")
EXPORT_SIZES = {"batch": 2, "seq": 3, "past": 4}


def cache_layout(model: Any) -> CacheLayout:
    """The layout the model's own cache has: one forward with ``use_cache=True`` on a 2-token input."""
    import torch

    with torch.no_grad():
        out = model(input_ids=torch.ones(1, 2, dtype=torch.long), use_cache=True)
    cache = out.past_key_values
    layers = getattr(cache, "layers", None)
    if not layers:
        raise ConversionError(
            f"{type(model).__name__} returns no layered KV cache ({type(cache).__name__})",
            "export it without its cache: --task text-generation",
        )
    keys = tuple(KvShape(int(layer.keys.shape[1]), int(layer.keys.shape[3])) for layer in layers)
    values = tuple(KvShape(int(layer.values.shape[1]), int(layer.values.shape[3])) for layer in layers)
    uses_pos = "position_ids" in inspect.signature(model.forward).parameters
    return CacheLayout(keys, values, uses_pos, str(layers[0].keys.dtype).removeprefix("torch."))


def _wrapper_class(position_ids: bool):
    import torch

    class WithPast(torch.nn.Module):
        """(input_ids, attention_mask[, position_ids], past) -> (logits, *present)."""

        def __init__(self, model: Any, layers: int) -> None:
            super().__init__()
            self.model, self.layers = model, layers

        def run(self, input_ids, attention_mask, position_ids, past):
            from transformers import DynamicCache

            cache = DynamicCache(ddp_cache_data=[(past[2 * i], past[2 * i + 1]) for i in range(self.layers)])
            extra = {"position_ids": position_ids} if position_ids is not None else {}
            out = self.model(
                input_ids=input_ids, attention_mask=attention_mask, past_key_values=cache, use_cache=True, **extra
            )
            present = [t for layer in out.past_key_values.layers for t in (layer.keys, layer.values)]
            return (out.logits, *present)

    if position_ids:

        class WithPositions(WithPast):
            def forward(self, input_ids, attention_mask, position_ids, past):
                return self.run(input_ids, attention_mask, position_ids, past)

        return WithPositions

    class WithoutPositions(WithPast):
        def forward(self, input_ids, attention_mask, past):
            return self.run(input_ids, attention_mask, None, past)

    return WithoutPositions


def WithPastWrapper(model: Any, layout: CacheLayout):
    """The module that is exported: the model behind optimum's flat with-past interface."""
    return _wrapper_class(layout.position_ids)(model, layout.layers).eval()


def example_feeds(
    layout: CacheLayout, batch: int, seq: int, past: int, vocab: int, seed: int, pad_rows: bool = False
) -> dict[str, Any]:
    """Inputs in the graph's names: random ids, a mask over past + sequence (row 0 left-padded by half
    its length when ``pad_rows``), positions as generation computes them, random past."""
    import numpy as np

    rng = np.random.default_rng(seed)
    mask = np.ones((batch, past + seq), dtype=np.int64)
    if pad_rows:
        mask[0, : (past + seq) // 2] = 0
    feeds: dict[str, Any] = {"input_ids": rng.integers(0, vocab, (batch, seq)).astype(np.int64), "attention_mask": mask}
    if layout.position_ids:
        pos = np.where(mask == 0, 0, np.cumsum(mask, axis=1) - 1)
        feeds["position_ids"] = pos[:, past:].astype(np.int64)
    for name, s in zip(layout.past_names, layout.kv_shapes()):
        feeds[name] = rng.standard_normal((batch, s.heads, past, s.head_dim)).astype(layout.dtype)
    return feeds


def _torch_args(feeds: dict[str, Any], layout: CacheLayout) -> tuple:
    import torch

    head = [torch.from_numpy(feeds[n]) for n in ("input_ids", "attention_mask")]
    if layout.position_ids:
        head.append(torch.from_numpy(feeds["position_ids"]))
    return (*head, [torch.from_numpy(feeds[n]) for n in layout.past_names])


def run_wrapper(wrapper: Any, layout: CacheLayout, feeds: dict[str, Any]) -> list[Any]:
    """The wrapper's outputs for ``feeds``, as numpy arrays."""
    import torch

    with torch.no_grad():
        return [t.float().numpy() for t in wrapper(*_torch_args(feeds, layout))]


@dataclass(frozen=True)
class ExportedDecoder:
    """The route that won, every route tried, and the written graph (``path``)."""

    route: str
    attempts: tuple[RouteAttempt, ...]
    path: Path
    layout: CacheLayout
    opset: int
    seconds: float


def _export_torchscript(wrapper, args, layout: CacheLayout, path: Path, opset: int) -> None:
    import torch

    axes: dict[str, dict[int, str]] = {
        "input_ids": {0: BATCH, 1: SEQ},
        "attention_mask": {0: BATCH, 1: TOTAL},
        "logits": {0: BATCH, 1: SEQ},
    }
    if layout.position_ids:
        axes["position_ids"] = {0: BATCH, 1: SEQ}
    axes.update({n: {0: BATCH, 2: PAST} for n in layout.past_names})
    axes.update({n: {0: BATCH, 2: TOTAL} for n in layout.present_names})
    torch.onnx.export(
        wrapper,
        args,
        str(path),
        dynamo=False,
        input_names=list(layout.input_names),
        output_names=list(layout.output_names),
        dynamic_axes=axes,
        opset_version=min(opset, 20),
    )


def _export_dynamo(wrapper, args, layout: CacheLayout, path: Path, opset: int) -> None:
    import torch

    batch, seq, past = torch.export.Dim("batch"), torch.export.Dim("sequence"), torch.export.Dim("past")
    shapes: dict[str, Any] = {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: torch.export.Dim.AUTO}}
    if layout.position_ids:
        shapes["position_ids"] = {0: batch, 1: seq}
    shapes["past"] = [{0: batch, 2: past} for _ in layout.past_names]
    program = torch.onnx.export(
        wrapper,
        args,
        None,
        dynamo=True,
        dynamic_shapes=shapes,
        input_names=list(layout.input_names),
        output_names=list(layout.output_names),
        opset_version=opset,
        external_data=True,
    )
    assert program is not None  # torch types the TorchScript path's None; dynamo=True returns the program
    program.save(str(path), external_data=True)


_EXPORTERS = {"torchscript": _export_torchscript, "torch.export/dynamo": _export_dynamo}


def name_axes(path: Path, layout: CacheLayout) -> None:
    """optimum's names on the dynamic axes of every input and output (whatever the exporter chose)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    wanted: dict[str, tuple[str | None, ...]] = {
        "input_ids": (BATCH, SEQ),
        "attention_mask": (BATCH, TOTAL),
        "position_ids": (BATCH, SEQ),
        "logits": (BATCH, SEQ),
    }
    wanted.update({n: (BATCH, None, PAST) for n in layout.past_names})
    wanted.update({n: (BATCH, None, TOTAL) for n in layout.present_names})
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        for d, name in zip(dims, wanted.get(value.name, ())):
            if name is not None:
                d.ClearField("dim_value")
                d.dim_param = name
    onnx.save(model, str(path))


def _check(path: Path, wrapper: Any, layout: CacheLayout, vocab: int, atol: float) -> str | None:
    """None when the graph matches the wrapper at a left-padded prefill (past 0) and decode steps (sizes
    the export did not use), else why not. Padded positions are left out: what a model computes for a
    query that attends to nothing is arbitrary, and every later step masks it."""
    import numpy as np

    from ..runtime.sessions import OrtRunner

    runner = OrtRunner(path, "cpu")
    for label, (b, s, p) in (("prefill", (3, 5, 0)), ("decode", (1, 1, 7)), ("chunk", (2, 2, 6))):
        feeds = example_feeds(layout, b, s, p, vocab, seed=b + s + p, pad_rows=True)
        keep = feeds["attention_mask"].astype(bool)
        want = run_wrapper(wrapper, layout, feeds)
        got = runner.run(feeds)
        for name, w, g in zip(layout.output_names, want, got):
            if w.shape != g.shape:
                return f"{label} (batch {b}, seq {s}, past {p}): {name} shape {g.shape}, expected {w.shape}"
            valid = keep[:, -s:] if name == "logits" else keep  # [batch, positions]
            w, g = (np.moveaxis(a.astype(np.float32), 1 if name == "logits" else 2, 1) for a in (w, g))
            w, g = w[valid], g[valid]
            err = float(np.max(np.abs(w - g))) if w.size else 0.0
            if not err <= atol * max(1.0, float(np.max(np.abs(w))) if w.size else 1.0):
                return f"{label} (batch {b}, seq {s}, past {p}): {name} max_abs {err:.3g} exceeds {atol:g}"
    return None


def export_with_past(
    model: Any, out: Path, *, opset: int = 18, routes: tuple[str, ...] = (), atol: float = 1e-4, debug: bool = False
) -> ExportedDecoder:
    """Export ``model`` to ``out`` (``model.onnx``, weights in ``model.onnx.data`` when large) through the
    first route (of ``routes``, default :data:`ROUTES`) whose graph matches the wrapper."""
    from ..errors import UsageError

    unknown = [r for r in routes if r not in _EXPORTERS]
    if unknown:
        raise UsageError(f"unknown --route {unknown[0]!r} for a with-past export", f"routes: {', '.join(ROUTES)}")
    layout = cache_layout(model)
    wrapper = WithPastWrapper(model, layout)
    vocab = int(model.config.get_text_config().vocab_size)
    args = _torch_args(example_feeds(layout, **EXPORT_SIZES, vocab=vocab, seed=0, pad_rows=True), layout)
    attempts: list[RouteAttempt] = []
    t_all = time.perf_counter()
    for route in routes or ROUTES:
        scratch = out.parent / f".{route.replace('/', '-')}"
        scratch.mkdir(parents=True, exist_ok=True)
        path = scratch / out.name
        t0 = time.perf_counter()
        try:
            with quiet(enabled=not debug):
                _EXPORTERS[route](wrapper, args, layout, path, opset)
            name_axes(path, layout)
        except Exception as e:  # noqa: BLE001 - an exporter's failure is a lost route, reported
            attempts.append(RouteAttempt(route, False, time.perf_counter() - t0, first_line(e, 300), exported=False))
            continue
        why = _check(path, wrapper, layout, vocab, atol)
        attempts.append(
            RouteAttempt(
                route, why is None, time.perf_counter() - t0, why, exported=True, valid_onnx=True, parity=why is None
            )
        )
        if why is None:
            _move(path, out)
            return ExportedDecoder(route, tuple(attempts), out, layout, opset, time.perf_counter() - t_all)
    lines = "; ".join(f"{a.route}: {a.error}" for a in attempts)
    raise ConversionError(
        f"no route exported {type(model).__name__} with its KV cache ({lines})",
        "try --task text-generation (no cache), or --debug for the exporters' output",
        attempts=tuple(attempts),
    )


def _move(path: Path, out: Path) -> None:
    """The graph into place: one file, or ``model.onnx`` + ``model.onnx.data`` when the weights the
    exporter wrote (judged on disk, never serialised whole) pass ~1.8 GB; the scratch folder removed."""
    import shutil

    import onnx

    size = sum(f.stat().st_size for f in path.parent.iterdir() if f.is_file())
    model = onnx.load(str(path))
    if size > 1_800_000_000:
        onnx.save(
            model, str(out), save_as_external_data=True, all_tensors_to_one_file=True, location=out.name + ".data"
        )
    else:
        onnx.save(model, str(out))
    shutil.rmtree(path.parent, ignore_errors=True)
