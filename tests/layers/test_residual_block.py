"""ResidualBlock (7.140): equal to the chapter's graph, argument errors."""

import keras
import numpy as np
import pytest

from kerazoo.layers import ResidualBlock


def test_residual_block_equals_the_chapter_graph():
    # y = conv(conv(conv(x))); y = add([y, x]), all 3x3 'same' relu, 128 filters.
    x = np.random.default_rng(0).standard_normal((2, 12, 12, 128)).astype("float32")
    block = ResidualBlock()
    out = block(x)
    inputs = keras.Input((12, 12, 128))
    convs = [keras.layers.Conv2D(128, 3, activation="relu", padding="same") for _ in range(3)]
    y = inputs
    for conv in convs:
        y = conv(y)
    chapter = keras.Model(inputs, keras.layers.add([y, inputs]))
    for conv, step in zip(convs, block.steps):
        conv.set_weights(step[0].get_weights())
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(out), chapter.predict(x, verbose=0), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"filters": -4}, "received: filters=-4"),
        ({"kernel_size": 0}, "received: kernel_size=0"),
        ({"num_convs": 1.5}, "received: num_convs=1.5"),
        ({"strides": True}, "received: strides=True"),
        ({"rank": 3}, "received: rank=3"),
        ({"activation": 7}, "received: activation=7"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ResidualBlock(**kwargs)
