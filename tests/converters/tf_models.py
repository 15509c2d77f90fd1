"""Small TensorFlow / Keras models with random weights, used as ``tf_models.py:NAME`` sources.

Every factory seeds Keras so two processes (the test and the Keras-on-torch child) agree on
shapes; weights travel to the child explicitly anyway.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers


def _seed() -> None:
    keras.utils.set_random_seed(0)


def mobilenet_v2():
    _seed()
    return keras.applications.MobileNetV2(
        weights=None, input_shape=(32, 32, 3), classes=10, classifier_activation=None, alpha=0.35
    )


def resnet50():
    _seed()
    return keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classes=10, classifier_activation=None)


def text_rnn():
    """Bidirectional LSTM + GRU over int32 token ids of any length."""
    _seed()
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = layers.Embedding(100, 16)(tokens)
    x = layers.Bidirectional(layers.LSTM(12, return_sequences=True))(x)
    x = layers.GRU(10)(x)
    return keras.Model(tokens, layers.Dense(3, name="logits")(x))


def unet():
    """A two-level functional U-Net (skip connections, transposed convolutions)."""
    _seed()
    inp = keras.Input((32, 32, 3), name="image")
    c1 = layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    p1 = layers.MaxPooling2D()(c1)
    c2 = layers.Conv2D(16, 3, padding="same", activation="relu")(p1)
    p2 = layers.MaxPooling2D()(c2)
    b = layers.Conv2D(32, 3, padding="same", activation="relu")(p2)
    u2 = layers.Conv2DTranspose(16, 2, strides=2, padding="same")(b)
    c3 = layers.Conv2D(16, 3, padding="same", activation="relu")(layers.Concatenate()([u2, c2]))
    u1 = layers.Conv2DTranspose(8, 2, strides=2, padding="same")(c3)
    c4 = layers.Conv2D(8, 3, padding="same", activation="relu")(layers.Concatenate()([u1, c1]))
    return keras.Model(inp, layers.Conv2D(2, 1, name="mask_logits")(c4))


class PositionEmbedding(layers.Layer):
    """Adds a learned embedding of each position (the sequence length is dynamic)."""

    def __init__(self, max_len, dim, **kwargs):
        super().__init__(**kwargs)
        self.table = layers.Embedding(max_len, dim)

    def call(self, x):
        # cumsum, not arange(shape): Keras' torch backend cannot take a symbolic size in arange
        positions = keras.ops.cumsum(keras.ops.ones_like(x[..., 0], dtype="int32"), axis=1) - 1
        return x + self.table(positions)


def transformer_block():
    """Token + position embedding, MultiHeadAttention, feed-forward, two outputs."""
    _seed()
    tokens = keras.Input((None,), dtype="int32", name="tokens")
    x = PositionEmbedding(128, 16)(layers.Embedding(64, 16)(tokens))
    attn = layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x, use_causal_mask=True)
    x = layers.LayerNormalization()(x + attn)
    ff = layers.Dense(16)(layers.Dense(32, activation="gelu")(x))
    x = layers.LayerNormalization()(x + ff)
    return keras.Model(tokens, {"hidden": x, "pooled": layers.GlobalAveragePooling1D()(x)})


class Subclassed(keras.Model):
    """No input signature: onnxbridge needs --input and builds the model by calling it."""

    def __init__(self):
        super().__init__()
        self.a = layers.Dense(12, activation="relu")
        self.b = layers.Dense(4)

    def call(self, x, training=False):
        return self.b(self.a(x)) + keras.ops.sum(x, axis=-1, keepdims=True)


def subclassed():
    _seed()
    return Subclassed()


def log1p_head():
    """tf2onnx has no ONNX mapping for TensorFlow's Log1p: the Keras-on-torch route must win."""
    _seed()
    inp = keras.Input((8,), name="x")
    h = layers.Dense(8)(inp)
    return keras.Model(inp, keras.ops.log1p(keras.ops.abs(h)))


def dense_small():
    _seed()
    inp = keras.Input((6,), name="features")
    return keras.Model(inp, layers.Dense(3, name="scores")(layers.Dense(8, activation="tanh")(inp)))


def with_example():
    """A factory returning (model, example_inputs): shapes come from the example."""
    _seed()
    return Subclassed(), (np.ones((3, 5), np.float32),)


class Scaler(tf.Module):
    """A plain tf.Module with a tf.function that has an input signature."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(0)
        self.w = tf.Variable(rng.standard_normal((6, 4)).astype("float32"))
        self.b = tf.Variable(rng.standard_normal((4,)).astype("float32"))

    @tf.function(input_signature=[tf.TensorSpec([None, 6], tf.float32, name="x")])
    def __call__(self, x):
        return tf.nn.relu(tf.matmul(x, self.w) + self.b)


def scaler():
    return Scaler()


@tf.function
def no_signature(x):
    return tf.tanh(x) * 2.0


@tf.function
def bessel(x):
    """An op tf2onnx has no ONNX mapping for: conversion must fail with exit 3 naming it."""
    return tf.math.bessel_i0e(x)
