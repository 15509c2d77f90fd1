"""Encoder-decoders (T5, BART, Marian...) with their KV cache, in optimum's three-file layout:

- ``encoder_model.onnx``: ``input_ids``, ``attention_mask`` -> ``last_hidden_state``;
- ``decoder_model.onnx`` (the first step): ``encoder_attention_mask``, ``input_ids``, ``encoder_hidden_states``
  -> ``logits``, ``present.{i}.decoder.key/.value``, ``present.{i}.encoder.key/.value``;
- ``decoder_with_past_model.onnx`` (every later step): ``encoder_attention_mask``, ``input_ids``,
  ``past_key_values.{i}.decoder.*`` / ``.encoder.*`` -> ``logits``, ``present.{i}.decoder.*``.

Wrappers build transformers' :class:`~transformers.EncoderDecoderCache` from the flat tensors; each graph is
exported by the first route (TorchScript, then torch.export/dynamo) whose graph matches its wrapper at sizes
the export did not use.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._util import first_line, quiet
from ..errors import ConversionError, UsageError
from ..results import RouteAttempt
from .graphs import DECODER, DECODER_WITH_PAST, ENCODER, GraphSpec, flat_cache, kv_names

__all__ = ["DECODER", "DECODER_WITH_PAST", "ENCODER", "Seq2SeqExport", "export_seq2seq", "kv_names"]

ROUTES = ("torchscript", "torch.export/dynamo")


@dataclass(frozen=True)
class Seq2SeqExport:
    """The three graphs written, the route each took, every route tried."""

    routes: tuple[str, ...]
    attempts: tuple[RouteAttempt, ...]
    layers: int
    seconds: float


def _modules(model: Any, layers: int):
    import torch
    from transformers import DynamicCache, EncoderDecoderCache

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = model.get_encoder()

        def forward(self, input_ids, attention_mask):
            return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def flat(cache, sides):
        return flat_cache(cache, layers, sides)

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, encoder_attention_mask, input_ids, encoder_hidden_states):
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
            out = self.model(
                encoder_outputs=(encoder_hidden_states,),
                attention_mask=encoder_attention_mask,
                decoder_input_ids=input_ids,
                past_key_values=cache,
                use_cache=True,
            )
            return (out.logits, *flat(out.past_key_values, ("decoder", "encoder")))

    class DecoderWithPast(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, encoder_attention_mask, input_ids, past):
            own = [(past[4 * i], past[4 * i + 1]) for i in range(layers)]
            cross = [(past[4 * i + 2], past[4 * i + 3]) for i in range(layers)]
            cache = EncoderDecoderCache(DynamicCache(ddp_cache_data=own), DynamicCache(ddp_cache_data=cross))
            hidden = (
                model.config.get_text_config().d_model if hasattr(model.config, "d_model") else model.config.hidden_size
            )
            # not read: every layer's cross-attention keys and values come from the past
            states = torch.zeros(encoder_attention_mask.shape[0], encoder_attention_mask.shape[1], hidden)
            out = self.model(
                encoder_outputs=(states,),
                attention_mask=encoder_attention_mask,
                decoder_input_ids=input_ids,
                past_key_values=cache,
                use_cache=True,
            )
            return (out.logits, *flat(out.past_key_values, ("decoder",)))

    return Encoder().eval(), Decoder().eval(), DecoderWithPast().eval()


def _graphs(model: Any, layers: int, enc_heads: list, dec_heads: list) -> list[GraphSpec]:
    """The three graphs, their names, dynamic axes and a feed maker."""
    import numpy as np

    encoder, decoder, with_past = _modules(model, layers)
    cfg = model.config
    vocab, hidden = int(cfg.vocab_size), int(getattr(cfg, "d_model", None) or cfg.hidden_size)
    B, E, D, P = "batch_size", "encoder_sequence_length", "decoder_sequence_length", "past_decoder_sequence_length"

    def mask(rng, b, e):
        m = np.ones((b, e), dtype=np.int64)
        m[0, : e // 2] = 0
        return m

    def enc_feeds(b, e, d, p, seed):
        rng = np.random.default_rng(seed)
        return [rng.integers(0, vocab, (b, e)).astype(np.int64), mask(rng, b, e)]

    def dec_feeds(b, e, d, p, seed):
        rng = np.random.default_rng(seed)
        return [
            mask(rng, b, e),
            rng.integers(0, vocab, (b, d)).astype(np.int64),
            rng.standard_normal((b, e, hidden)).astype(np.float32),
        ]

    def past_feeds(b, e, d, p, seed):
        rng = np.random.default_rng(seed)
        past = []
        for i in range(layers):
            for length, (h, dim) in ((p, dec_heads[i]), (p, dec_heads[i]), (e, enc_heads[i]), (e, enc_heads[i])):
                past.append(rng.standard_normal((b, h, length, dim)).astype(np.float32))
        return [mask(rng, b, e), rng.integers(0, vocab, (b, d)).astype(np.int64), past]

    present_all = kv_names("present", layers)
    present_dec = kv_names("present", layers, ("decoder",))
    past_all = kv_names("past_key_values", layers)
    dec_axes = {n: {0: B, 2: D if ".decoder." in n else E} for n in present_all}
    past_axes = {n: {0: B, 2: P if ".decoder." in n else E} for n in past_all}
    past_axes.update({n: {0: B, 2: f"{P} + 1"} for n in present_dec})
    return [
        GraphSpec(
            ENCODER,
            encoder,
            ["input_ids", "attention_mask"],
            ["last_hidden_state"],
            {"input_ids": {0: B, 1: E}, "attention_mask": {0: B, 1: E}, "last_hidden_state": {0: B, 1: E}},
            enc_feeds,
            lambda f: f[1].astype(bool),
        ),
        GraphSpec(
            DECODER,
            decoder,
            ["encoder_attention_mask", "input_ids", "encoder_hidden_states"],
            ["logits", *present_all],
            {
                "encoder_attention_mask": {0: B, 1: E},
                "input_ids": {0: B, 1: D},
                "encoder_hidden_states": {0: B, 1: E},
                "logits": {0: B, 1: D},
                **dec_axes,
            },
            dec_feeds,
            lambda f: f[0].astype(bool),
        ),
        GraphSpec(
            DECODER_WITH_PAST,
            with_past,
            ["encoder_attention_mask", "input_ids", *past_all],
            ["logits", *present_dec],
            {"encoder_attention_mask": {0: B, 1: E}, "input_ids": {0: B}, "logits": {0: B}, **past_axes},
            past_feeds,
            lambda f: f[0].astype(bool),
        ),
    ]


def _torch(feeds: list) -> tuple:
    import torch

    return tuple([torch.from_numpy(t) for t in f] if isinstance(f, list) else torch.from_numpy(f) for f in feeds)


def _flat(feeds: list) -> list:
    return [t for f in feeds for t in (f if isinstance(f, list) else [f])]


def _export(g: GraphSpec, route: str, path: Path, opset: int) -> None:
    import torch

    args = _torch(g.feeds(2, 5, 1 if g.file != DECODER else 2, 3, 0))
    if route == "torchscript":
        torch.onnx.export(
            g.module,
            args,
            str(path),
            dynamo=False,
            input_names=g.inputs,
            output_names=g.outputs,
            dynamic_axes=g.axes,
            opset_version=min(opset, 20),
        )
        return
    shapes: list[Any] = []  # torch's dynamic_shapes: a dict per tensor, a list of dicts for the past
    for name, a in zip(g.inputs, args):  # the leading tensors by name; a trailing list (the past) by position
        if isinstance(a, list):
            shapes.append([{0: torch.export.Dim.AUTO, 2: torch.export.Dim.AUTO} for _ in a])
        else:
            shapes.append({k: torch.export.Dim.AUTO for k in g.axes.get(name, {})})
    program = torch.onnx.export(
        g.module,
        args,
        None,
        dynamo=True,
        dynamic_shapes=tuple(shapes),
        input_names=g.inputs,
        output_names=g.outputs,
        opset_version=opset,
    )
    assert program is not None  # torch types the TorchScript path's None; dynamo=True returns the program
    program.save(str(path))


def _check(g: GraphSpec, path: Path) -> str | None:
    import numpy as np
    import onnxruntime as ort
    import torch

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for b, e, d, p in ((3, 7, 1, 4), (1, 3, 1, 9)):
        feeds = g.feeds(b, e, d, p, seed=b + e + p)
        with torch.no_grad():
            want = (
                [t.numpy() for t in g.module(*_torch(feeds))]
                if g.file != ENCODER
                else [g.module(*_torch(feeds)).numpy()]
            )
        names = [i.name for i in sess.get_inputs()]
        got = sess.run(
            None,
            dict(zip(g.inputs, _flat(feeds)))
            if len(names) == len(_flat(feeds))
            else {n: v for n, v in zip(g.inputs, _flat(feeds)) if n in names},
        )
        keep = g.keep(feeds) if g.keep is not None else None  # padded encoder positions are arbitrary
        for name, w, o in zip(g.outputs, want, got):
            if w.shape != o.shape:
                return f"{g.file} (batch {b}, encoder {e}, past {p}): {name} shape {o.shape}, expected {w.shape}"
            if keep is not None and (name == "last_hidden_state" or ".encoder." in name):
                w, o = (np.moveaxis(a, 1 if name == "last_hidden_state" else 2, 1)[keep] for a in (w, o))
            err = float(np.max(np.abs(w - o))) if w.size else 0.0
            if not err <= 1e-4 * max(1.0, float(np.max(np.abs(w))) if w.size else 1.0):
                return f"{g.file} (batch {b}, encoder {e}, past {p}): {name} max_abs {err:.3g}"
    return None


def export_seq2seq(
    model: Any, out: Path, *, opset: int = 18, routes: tuple[str, ...] = (), debug: bool = False, speech: bool = False
) -> Seq2SeqExport:
    """The three graphs into ``out`` (a folder), each through the first route that passes its check."""
    import torch

    unknown = [r for r in routes if r not in ROUTES]
    if unknown:
        raise UsageError(f"unknown --route {unknown[0]!r} for a with-past export", f"routes: {', '.join(ROUTES)}")
    t0 = time.perf_counter()
    start = int(model.generation_config.decoder_start_token_id or model.config.decoder_start_token_id or 0)
    if speech:
        from .speech import features_shape, speech_graphs

        encoder_input = {"input_features": torch.zeros(1, *features_shape(model))}
    else:
        encoder_input = {"input_ids": torch.ones(1, 3, dtype=torch.long)}
    with torch.no_grad():
        probe = model(**encoder_input, decoder_input_ids=torch.full((1, 1), start), use_cache=True).past_key_values
    layers = len(probe.self_attention_cache.layers)
    dec = [(int(layer.keys.shape[1]), int(layer.keys.shape[3])) for layer in probe.self_attention_cache.layers]
    enc = [(int(layer.keys.shape[1]), int(layer.keys.shape[3])) for layer in probe.cross_attention_cache.layers]
    attempts, won = [], []
    for g in (speech_graphs if speech else _graphs)(model, layers, enc, dec):
        for route in routes or ROUTES:
            scratch = out / f".{g.file}.{route.replace('/', '-')}"
            scratch.mkdir(parents=True, exist_ok=True)
            t1 = time.perf_counter()
            try:
                with quiet(enabled=not debug):
                    _export(g, route, scratch / g.file, opset)
                why = _check(g, scratch / g.file)
            except Exception as e:  # noqa: BLE001 - an exporter's failure is a lost route, reported
                attempts.append(
                    RouteAttempt(
                        f"{route} ({g.file})", False, time.perf_counter() - t1, first_line(e, 300), exported=False
                    )
                )
                shutil.rmtree(scratch, ignore_errors=True)
                continue
            attempts.append(
                RouteAttempt(
                    f"{route} ({g.file})",
                    why is None,
                    time.perf_counter() - t1,
                    why,
                    exported=True,
                    valid_onnx=True,
                    parity=why is None,
                )
            )
            if why is None:
                import onnx

                onnx.save(onnx.load(str(scratch / g.file)), str(out / g.file))
                shutil.rmtree(scratch, ignore_errors=True)
                won.append(route)
                break
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            lines = "; ".join(f"{a.route}: {a.error}" for a in attempts if not a.ok)
            raise ConversionError(
                f"no route exported {g.file} of {type(model).__name__} ({lines})",
                "try --task text2text-generation (no cache), or --debug",
                attempts=tuple(attempts),
            )
    return Seq2SeqExport(tuple(won), tuple(attempts), layers, time.perf_counter() - t0)
