"""InceptionBlock (7.140): the chapter's input, branches that cannot line
up, argument errors."""

import keras
import numpy as np
import pytest

from kerazoo.layers import InceptionBlock


def test_inception_on_the_chapter_input():
    x = np.zeros((10, 128, 128, 3), "float32")
    y = InceptionBlock(128, strides=2)(x)
    # Four 128-filter branches at half resolution.
    assert tuple(y.shape) == (10, 64, 64, 4 * 128)


@pytest.mark.parametrize("use_batch_norm", [False, True])
def test_inception_is_the_chapters_graph(use_batch_norm):
    """On a non-zero input, the block equals section 7.140's four branches
    written out with plain Keras layers and the block's weights: activation
    after every convolution, average pooling in branch c, concatenation."""
    layers = keras.layers
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 16, 16, 3)).astype("float32")
    block = InceptionBlock(4, strides=2, use_batch_norm=use_batch_norm)
    got = keras.ops.convert_to_numpy(block(x))
    by_name = {op.name: op for branch in block.branches for op in branch}

    def conv(name, filters, kernel, strides, t):
        source = by_name[f"{name}_conv"]
        if not use_batch_norm:
            y = layers.Conv2D(filters, kernel, strides=strides, padding="same", activation="relu")
            y.build(t.shape)
            y.set_weights(source.get_weights())
            return y(t)
        y = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)
        y.build(t.shape)
        y.set_weights(source.get_weights())
        t = y(t)
        bn = layers.BatchNormalization()
        bn.build(t.shape)
        bn.set_weights(by_name[f"{name}_bn"].get_weights())
        return layers.Activation("relu")(bn(t, training=False))

    branch_a = conv("branch_a_1", 4, 1, 2, x)
    branch_b = conv("branch_b_2", 4, 3, 2, conv("branch_b_1", 4, 1, 1, x))
    branch_c = conv("branch_c_2", 4, 3, 1, layers.AveragePooling2D(3, strides=2, padding="same")(x))
    branch_d = conv(
        "branch_d_3", 4, 3, 2, conv("branch_d_2", 4, 3, 1, conv("branch_d_1", 4, 1, 1, x))
    )
    want = keras.ops.convert_to_numpy(
        layers.concatenate([branch_a, branch_b, branch_c, branch_d], axis=-1)
    )
    assert np.abs(want).max() > 0.1 and (want == 0).mean() > 0.2  # the ReLUs act
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"filters": 0}, "received: filters=0"),
        ({"filters": (1, 2, 3)}, r"received: filters=\(1, 2, 3\)"),
        ({"strides": 0}, "received: strides=0"),
        ({"padding": "full"}, "received: padding='full'"),
        ({"activation": "nope"}, "received: activation='nope'"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InceptionBlock(**kwargs)


def test_inception_branches_that_do_not_line_up_fail_at_build():
    # The chapter's snippet as printed (default 'valid' padding) cannot concatenate.
    block = InceptionBlock(128, strides=2, padding="valid")
    with pytest.raises(
        ValueError,
        match=r"branch a: 64x64, branch b: 63x63, branch c: 61x61, "
        r"branch d: 62x62\); use padding='same'",
    ):
        block(keras.Input((128, 128, 3)))


def test_inception_needs_known_channels_and_room_for_its_kernels():
    with pytest.raises(ValueError, match="needs a known channel count"):
        InceptionBlock(4).build((None, 8, 8, None))
    with pytest.raises(ValueError, match="too small for its 3x3 kernels"):
        InceptionBlock(4, strides=1, padding="valid").build((None, 3, 3, 2))
