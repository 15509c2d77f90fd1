"""A small Keras functional model for localisation tests: conv + batch norm (NHWC in Keras, NCHW in
ONNX), a shared Dense called twice, a nested Sequential."""

from __future__ import annotations

import numpy as np


def net():
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3), name="img")
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv1")(inp)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.Flatten(name="flat")(x)
    shared = keras.layers.Dense(32, name="shared")
    x = shared(keras.layers.Dense(32, name="proj")(x))
    x = shared(keras.layers.Dense(32, activation="relu", name="mid")(x))
    block = keras.Sequential(
        [keras.layers.Dense(32, activation="relu", name="inner_a"), keras.layers.Dense(32, name="inner_b")],
        name="block",
    )
    out = keras.layers.Dense(4, name="head")(keras.layers.LayerNormalization(name="ln")(block(x)))
    model = keras.Model(inp, out, name="net")
    rng = np.random.default_rng(1)
    for w in model.weights:  # non-zero biases and shifts, so nothing folds away as a no-op
        if "bias" in w.path or "beta" in w.path:
            w.assign(rng.normal(0, 0.1, w.shape).astype("float32"))
    return model
