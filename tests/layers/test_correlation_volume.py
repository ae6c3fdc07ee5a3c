"""CorrelationVolume: finds the shift, scores the border lowest, checks shapes."""

import keras
import numpy as np
import pytest

from kerazoo.layers import CorrelationVolume


def test_correlation_volume_finds_the_shift():
    rng = np.random.default_rng(0)
    right = rng.normal(size=(1, 3, 20, 6)).astype("float32")
    for shift in (0, 2, 5):
        left = np.roll(right, shift, axis=2)
        volume = keras.ops.convert_to_numpy(CorrelationVolume(6)([left, right]))
        best = volume[0, :, shift:].argmax(-1)
        assert (best == shift).all()
        # Normalized scores are cosines; the true match scores 1.
        np.testing.assert_allclose(volume[0, :, shift:, shift], 1.0, atol=1e-5)
    assert (volume[0, :, 0, 1:] == -1).all()  # no partner left of the border


def test_correlation_volume_needs_matching_shapes():
    with pytest.raises(ValueError, match="same size"):
        CorrelationVolume(3)([keras.Input((4, 8, 2)), keras.Input((4, 9, 2))])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"max_disparity": 0}, "received: max_disparity=0"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CorrelationVolume(**kwargs)


@pytest.mark.parametrize(
    "shape,max_disparity,normalize",
    [
        ((2, 3, 17, 5), 4, True),
        ((1, 2, 10, 3), 9, False),
        ((1, 4, 50, 8), 12, True),
        ((1, 1, 5, 2), 7, True),
    ],
)  # a range wider than the image, too
def test_correlation_volume_equals_the_definition(shape, max_disparity, normalize):
    """The blocked-matmul implementation against the plain per-disparity definition."""
    rng = np.random.default_rng(0)
    left, right = (rng.normal(size=shape).astype("float32") for _ in range(2))
    got = keras.ops.convert_to_numpy(CorrelationVolume(max_disparity, normalize)([left, right]))

    def prepare(x):
        if not normalize:
            return x
        x = x - x.mean(-1, keepdims=True)
        return x / np.sqrt((x**2).sum(-1, keepdims=True) + 1e-6)

    a, b = prepare(left), prepare(right)
    width = shape[2]
    for d in range(max_disparity + 1):
        for x in range(d, width):
            want = (a[:, :, x] * b[:, :, x - d]).sum(-1) / (1 if normalize else shape[-1])
            np.testing.assert_allclose(got[:, :, x, d], want, rtol=1e-5, atol=1e-5)
        if normalize:
            assert (got[:, :, : min(d, width), d] == -1).all()
