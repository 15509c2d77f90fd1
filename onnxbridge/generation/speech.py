"""Whisper-style speech-to-text with its KV cache (``automatic-speech-recognition-with-past``), in
optimum's names: ``encoder_model.onnx`` (``input_features`` -> ``last_hidden_state``), ``decoder_model.onnx``
(``input_ids``, ``encoder_hidden_states`` -> ``logits``, ``present.{i}.decoder.*``, ``present.{i}.encoder.*``)
and ``decoder_with_past_model.onnx`` (``input_ids``, ``past_key_values.{i}.*`` -> ``logits``,
``present.{i}.decoder.*``). No attention masks: the encoder sees fixed-length log-mel frames."""

from __future__ import annotations

from typing import Any

from .graphs import DECODER, DECODER_WITH_PAST, ENCODER, GraphSpec, flat_cache, kv_names

__all__ = ["features_shape", "speech_graphs"]


def features_shape(model: Any) -> tuple[int, int]:
    """(mel bins, frames) the encoder takes: twice its position count (the convolution halves it)."""
    cfg = model.config
    return int(cfg.num_mel_bins), 2 * int(cfg.max_source_positions)


def speech_graphs(model: Any, layers: int, enc_heads: list, dec_heads: list) -> list[GraphSpec]:
    """The three graphs of a speech encoder-decoder, their names, axes and feed makers."""
    import numpy as np
    import torch
    from transformers import DynamicCache, EncoderDecoderCache

    mels, frames = features_shape(model)
    vocab, hidden = int(model.config.vocab_size), int(model.config.d_model)
    B, D, P = "batch_size", "decoder_sequence_length", "past_decoder_sequence_length"

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = model.get_encoder()

        def forward(self, input_features):
            return self.encoder(input_features=input_features).last_hidden_state

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, encoder_hidden_states):
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
            out = self.model(
                encoder_outputs=(encoder_hidden_states,),
                decoder_input_ids=input_ids,
                past_key_values=cache,
                use_cache=True,
            )
            return (out.logits, *flat_cache(out.past_key_values, layers, ("decoder", "encoder")))

    class DecoderWithPast(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, past):
            own = [(past[4 * i], past[4 * i + 1]) for i in range(layers)]
            cross = [(past[4 * i + 2], past[4 * i + 3]) for i in range(layers)]
            cache = EncoderDecoderCache(DynamicCache(ddp_cache_data=own), DynamicCache(ddp_cache_data=cross))
            states = torch.zeros(input_ids.shape[0], past[2].shape[2], hidden)  # not read: the past holds it
            out = self.model(
                encoder_outputs=(states,), decoder_input_ids=input_ids, past_key_values=cache, use_cache=True
            )
            return (out.logits, *flat_cache(out.past_key_values, layers, ("decoder",)))

    enc_len = frames // 2

    def enc_feeds(b, e, d, p, seed):
        return [np.random.default_rng(seed).standard_normal((b, mels, frames)).astype(np.float32)]

    def dec_feeds(b, e, d, p, seed):
        rng = np.random.default_rng(seed)
        return [
            rng.integers(0, vocab, (b, d)).astype(np.int64),
            rng.standard_normal((b, enc_len, hidden)).astype(np.float32),
        ]

    def past_feeds(b, e, d, p, seed):
        rng = np.random.default_rng(seed)
        past = []
        for i in range(layers):
            for length, (h, dim) in (
                (p, dec_heads[i]),
                (p, dec_heads[i]),
                (enc_len, enc_heads[i]),
                (enc_len, enc_heads[i]),
            ):
                past.append(rng.standard_normal((b, h, length, dim)).astype(np.float32))
        return [rng.integers(0, vocab, (b, d)).astype(np.int64), past]

    present_all = kv_names("present", layers)
    present_dec = kv_names("present", layers, ("decoder",))
    past_all = kv_names("past_key_values", layers)
    dec_axes = {n: {0: B, 2: D} for n in present_all if ".decoder." in n}
    dec_axes.update({n: {0: B} for n in present_all if ".encoder." in n})
    past_axes = {n: {0: B, 2: P} if ".decoder." in n else {0: B} for n in past_all}
    past_axes.update({n: {0: B, 2: f"{P} + 1"} for n in present_dec})
    return [
        GraphSpec(
            ENCODER,
            Encoder().eval(),
            ["input_features"],
            ["last_hidden_state"],
            {"input_features": {0: B}, "last_hidden_state": {0: B}},
            enc_feeds,
        ),
        GraphSpec(
            DECODER,
            Decoder().eval(),
            ["input_ids", "encoder_hidden_states"],
            ["logits", *present_all],
            {"input_ids": {0: B, 1: D}, "encoder_hidden_states": {0: B}, "logits": {0: B, 1: D}, **dec_axes},
            dec_feeds,
        ),
        GraphSpec(
            DECODER_WITH_PAST,
            DecoderWithPast().eval(),
            ["input_ids", *past_all],
            ["logits", *present_dec],
            {"input_ids": {0: B}, "logits": {0: B}, **past_axes},
            past_feeds,
        ),
    ]
