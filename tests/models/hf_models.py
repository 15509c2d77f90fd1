"""Tiny Hugging Face models (random weights, built from configs: no downloads), each a factory returning
``(model, example_inputs)``, used as SOURCE ``hf_models.py:NAME`` in tests.

Each family also gives ``INPUTS`` (the ``--input`` specs, dynamic axes named), ``SIZES`` (sizes of the
axes the validator does not use, for the independent check) and ``make(name, sizes, seed)`` (inputs at
those sizes). Ids stay in 3..VOCAB (no special tokens), masks keep at least half of each row.
"""

from __future__ import annotations

import numpy as np
import torch

VOCAB = 100


def _build(make):
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return make().eval()


def _ids(rng, b, s):
    return rng.integers(3, VOCAB, size=(b, s)).astype(np.int64)


def _mask(rng, b, s):
    keep = rng.integers(max(1, s // 2), s + 1, size=(b,))
    return (np.arange(s) < keep[:, None]).astype(np.int64)


def _tensors(feeds):
    return {k: torch.from_numpy(v) for k, v in feeds.items()}


# ------------------------------------------------------------------------------------------------ encoder-decoders
def _seq2seq(sizes, seed):
    rng = np.random.default_rng(seed)
    b, s, d = sizes["batch"], sizes["seq"], sizes["dec_seq"]
    return {"input_ids": _ids(rng, b, s), "attention_mask": _mask(rng, b, s), "decoder_input_ids": _ids(rng, b, d)}


def t5():
    import transformers as tf

    cfg = tf.T5Config(
        vocab_size=VOCAB,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=4,
        decoder_start_token_id=0,
        pad_token_id=0,
    )
    return _build(lambda: tf.T5ForConditionalGeneration(cfg)), _tensors(
        _seq2seq({"batch": 2, "seq": 8, "dec_seq": 5}, 0)
    )


def bart():
    import transformers as tf

    cfg = tf.BartConfig(
        vocab_size=VOCAB,
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_position_embeddings=64,
    )
    return _build(lambda: tf.BartForConditionalGeneration(cfg)), _tensors(
        _seq2seq({"batch": 2, "seq": 8, "dec_seq": 5}, 0)
    )


WHISPER_MELS, WHISPER_FRAMES = 8, 32


def _whisper_inputs(sizes, seed):
    rng = np.random.default_rng(seed)
    b = sizes["batch"]
    return {
        "input_features": rng.standard_normal((b, WHISPER_MELS, WHISPER_FRAMES)).astype(np.float32),
        "decoder_input_ids": _ids(rng, b, sizes["dec_seq"]),
    }


def whisper():
    """Whisper with a batch-1 example (torch.export specialises batch 1 unless the example is grown)."""
    import transformers as tf

    cfg = tf.WhisperConfig(
        vocab_size=VOCAB,
        num_mel_bins=WHISPER_MELS,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        d_model=32,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=WHISPER_FRAMES // 2,
        max_target_positions=32,
        pad_token_id=1,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    return _build(lambda: tf.WhisperForConditionalGeneration(cfg)), _tensors(
        _whisper_inputs({"batch": 1, "dec_seq": 4}, 0)
    )


# ------------------------------------------------------------------------------------------------ text
def _lm(sizes, seed):
    rng = np.random.default_rng(seed)
    return {
        "input_ids": _ids(rng, sizes["batch"], sizes["seq"]),
        "attention_mask": _mask(rng, sizes["batch"], sizes["seq"]),
    }


def qwen2():
    """A Llama/Qwen2-style decoder (grouped-query attention, rotary positions, DynamicCache by default)."""
    import transformers as tf

    cfg = tf.Qwen2Config(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return _build(lambda: tf.Qwen2ForCausalLM(cfg)), _tensors(_lm({"batch": 2, "seq": 8}, 0))


def _clip_inputs(sizes, seed):
    rng = np.random.default_rng(seed)
    b, s = sizes["text_batch"], sizes["seq"]
    return {
        "input_ids": _ids(rng, b, s),
        "attention_mask": _mask(rng, b, s),
        "pixel_values": rng.standard_normal((sizes["image_batch"], 3, 32, 32)).astype(np.float32),
    }


def clip():
    import transformers as tf

    cfg = tf.CLIPConfig(
        text_config=dict(
            vocab_size=VOCAB,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            max_position_embeddings=32,
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=0,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )
    return _build(lambda: tf.CLIPModel(cfg)), _tensors(_clip_inputs({"text_batch": 2, "seq": 7, "image_batch": 3}, 0))


# ------------------------------------------------------------------------------------------------ speech and vision
def _audio(sizes, seed):
    rng = np.random.default_rng(seed)
    return {"input_values": rng.standard_normal((sizes["batch"], sizes["samples"])).astype(np.float32)}


def wav2vec2():
    """wav2vec2 with a dynamic number of samples: the source itself cannot run fewer than 20."""
    import transformers as tf

    cfg = tf.Wav2Vec2Config(
        vocab_size=32,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=64,
        conv_dim=(16, 16),
        conv_stride=(5, 2),
        conv_kernel=(10, 3),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        do_stable_layer_norm=True,
        feat_extract_norm="layer",
    )
    return _build(lambda: tf.Wav2Vec2ForCTC(cfg)), _tensors(_audio({"batch": 2, "samples": 400}, 0))


def _image(sizes, seed):
    rng = np.random.default_rng(seed)
    h, w = sizes.get("height", 32), sizes.get("width", 32)
    return {"pixel_values": rng.standard_normal((sizes["batch"], 3, h, w)).astype(np.float32)}


def swin():
    """Swin with drop-path on (its default 0.1): random in training mode only."""
    import transformers as tf

    cfg = tf.SwinConfig(
        image_size=32,
        patch_size=4,
        num_channels=3,
        embed_dim=16,
        depths=[1, 1],
        num_heads=[2, 2],
        window_size=4,
        num_labels=10,
        drop_path_rate=0.1,
    )
    return _build(lambda: tf.SwinForImageClassification(cfg)), _tensors(_image({"batch": 2}, 0))


def convnext():
    import transformers as tf

    cfg = tf.ConvNextConfig(
        num_channels=3, num_stages=2, hidden_sizes=[8, 16], depths=[1, 1], num_labels=10, patch_size=4
    )
    return _build(lambda: tf.ConvNextForImageClassification(cfg)), _tensors(_image({"batch": 2}, 0))


def segformer():
    import transformers as tf

    cfg = tf.SegformerConfig(
        num_channels=3,
        num_encoder_blocks=2,
        depths=[1, 1],
        sr_ratios=[2, 1],
        hidden_sizes=[16, 32],
        patch_sizes=[7, 3],
        strides=[4, 2],
        num_attention_heads=[1, 2],
        mlp_ratios=[2, 2],
        decoder_hidden_size=32,
        num_labels=4,
    )
    return _build(lambda: tf.SegformerForSemanticSegmentation(cfg)), _tensors(_image({"batch": 2}, 0))


_S2S = ["input_ids:batch,seq:int64", "attention_mask:batch,seq:int64", "decoder_input_ids:batch,dec_seq:int64"]
_IMAGE_BHW = ["pixel_values:batch,3,height,width"]

# name -> (--input specs, sizes never in the validator's plan, input maker)
FAMILIES = {
    "t5": (_S2S, [{"batch": 3, "seq": 17, "dec_seq": 2}, {"batch": 4, "seq": 29, "dec_seq": 13}], _seq2seq),
    "bart": (_S2S, [{"batch": 3, "seq": 17, "dec_seq": 2}, {"batch": 4, "seq": 29, "dec_seq": 13}], _seq2seq),
    "whisper": (
        ["input_features:batch,8,32", "decoder_input_ids:batch,dec_seq:int64"],
        [{"batch": 3, "dec_seq": 6}, {"batch": 2, "dec_seq": 17}],
        _whisper_inputs,
    ),
    "qwen2": (
        ["input_ids:batch,seq:int64", "attention_mask:batch,seq:int64"],
        [{"batch": 3, "seq": 21}, {"batch": 4, "seq": 50}],
        _lm,
    ),
    "clip": (
        ["input_ids:text_batch,seq:int64", "attention_mask:text_batch,seq:int64", "pixel_values:image_batch,3,32,32"],
        [{"text_batch": 4, "seq": 19, "image_batch": 2}, {"text_batch": 3, "seq": 3, "image_batch": 4}],
        _clip_inputs,
    ),
    "wav2vec2": (["input_values:batch,samples"], [{"batch": 3, "samples": 1001}, {"batch": 4, "samples": 160}], _audio),
    "swin": (["pixel_values:batch,3,32,32"], [{"batch": 3}, {"batch": 7}], _image),
    "convnext": (
        _IMAGE_BHW,
        [{"batch": 3, "height": 64, "width": 48}, {"batch": 4, "height": 17, "width": 23}],
        _image,
    ),
    "segformer": (
        _IMAGE_BHW,
        [{"batch": 3, "height": 64, "width": 48}, {"batch": 4, "height": 40, "width": 24}],
        _image,
    ),
}
