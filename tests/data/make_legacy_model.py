"""Writes tests/data/legacy_0_1.keras and its expected outputs.

Run ONCE with kerazoo 0.1 (commit 97d03c1, before the library/application
split); the file stays checked in so that later releases prove they still load
what 0.1 saved. Every kerazoo layer is in it, with configs in 0.1's format
(StereoXception's `output` key included).
"""

from pathlib import Path

import keras
import numpy as np

import kerazoo
from kerazoo.layers import (
    CorrelationVolume,
    InceptionBlock,
    ResidualBlock,
    SiameseEncoder,
    StereoXception,
)

HERE = Path(__file__).resolve().parent


def build():
    keras.utils.set_random_seed(7)
    left = keras.Input((16, 16, 3), name="left")
    right = keras.Input((16, 16, 3), name="right")
    seq_a = keras.Input((5, 4), name="seq_a")
    seq_b = keras.Input((5, 4), name="seq_b")

    def tiny():
        # One base per layer: a base object shared by two layers is serialized
        # into each layer's config and is two bases after loading (Keras
        # configs do not keep object identity), which neither release supports.
        tiny_in = keras.Input((None, None, 3))
        t = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c1")(tiny_in)
        t = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="c2")(t)
        return keras.Model(tiny_in, t, name="tiny")

    fl, fr = StereoXception(base=tiny(), feature_layers=["c1"], output="both", name="stereo_both")(
        [left, right]
    )
    cost = CorrelationVolume(3, name="cost")([fl, fr])
    both = StereoXception(base=tiny(), output="concat", name="stereo_concat")([left, right])
    x = InceptionBlock(4, strides=2, use_batch_norm=True, name="inception")(left)
    x = ResidualBlock(8, strides=2, name="residual")(x)
    similar = SiameseEncoder(
        keras.layers.LSTM(6),
        merge="abs_diff",
        head=keras.layers.Dense(1, activation="sigmoid"),
        name="siamese",
    )([seq_a, seq_b])
    return keras.Model(
        [left, right, seq_a, seq_b],
        {"cost": cost, "stereo": both, "residual": x, "similar": similar},
    )


def inputs():
    r = np.random.default_rng(0)
    return [
        r.random((2, 16, 16, 3), np.float32),
        r.random((2, 16, 16, 3), np.float32),
        r.random((2, 5, 4), np.float32),
        r.random((2, 5, 4), np.float32),
    ]


if __name__ == "__main__":
    model = build()
    outputs = model.predict(inputs(), verbose=0)
    model.save(HERE / f"legacy_{kerazoo.__version__.replace('.', '_')}.keras")
    np.savez(HERE / "legacy_outputs.npz", **{k: np.asarray(v) for k, v in outputs.items()})
    print("saved with kerazoo", kerazoo.__version__, "keras", keras.__version__)
