"""PixelPhases / MergePixelPhases: an exact round trip, and a stack of
undilated convolutions on the phases equals the dilated stack (the point)."""

import keras
import numpy as np
import pytest

from kerazoo.layers import MergePixelPhases, PixelPhases


@pytest.mark.parametrize(
    "factor,shape", [(2, (2, 6, 8, 3)), (2, (1, 7, 5, 2)), (3, (2, 9, 4, 1)), (1, (1, 3, 3, 2))]
)
def test_round_trip_is_exact(factor, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype("float32")
    phases = PixelPhases(factor)(x)
    back = MergePixelPhases(factor)([phases, x])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(back), x)
    # Phase (i, j) of image n is batch row (i * factor + j) * batch + n.
    phases = keras.ops.convert_to_numpy(phases)
    padded = np.pad(x, [[0, 0], [0, -shape[1] % factor], [0, -shape[2] % factor], [0, 0]])
    for i in range(factor):
        for j in range(factor):
            for n in range(shape[0]):
                np.testing.assert_array_equal(
                    phases[(i * factor + j) * shape[0] + n], padded[n, i::factor, j::factor]
                )


def test_phases_turn_a_dilated_stack_into_an_undilated_one():
    keras.utils.set_random_seed(0)
    dilated = [
        keras.layers.Conv2D(5, 3, dilation_rate=2, padding="same", activation="relu"),
        keras.layers.SeparableConv2D(4, 3, dilation_rate=2, padding="same"),
    ]
    plain = [
        keras.layers.Conv2D(5, 3, padding="same", activation="relu"),
        keras.layers.SeparableConv2D(4, 3, padding="same"),
    ]
    x = np.random.default_rng(1).standard_normal((2, 12, 10, 3)).astype("float32")
    expected = x
    for layer in dilated:
        expected = layer(expected)
    y = PixelPhases(2)(x)
    for layer, twin in zip(plain, dilated):
        layer.build(y.shape)
        layer.set_weights(twin.get_weights())
        y = layer(y)
    got = MergePixelPhases(2)([y, x])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(expected), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("cls", [PixelPhases, MergePixelPhases])
@pytest.mark.parametrize("factor", [0, 2.0, True, "2"])
def test_bad_factor_raises_value_error(cls, factor):
    with pytest.raises(ValueError, match=f"received: factor={factor!r}"):
        cls(factor)


def test_merge_needs_phases_and_like():
    with pytest.raises(ValueError, match="expects \\[phases, like\\]"):
        MergePixelPhases(2).compute_output_shape((8, 3, 3, 2))
