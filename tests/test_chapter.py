"""The chapter's snippets (sections 7.140-7.160) rebuilt with kerazoo."""

import keras
import numpy as np
import pytest
from conftest import tiny_base
from gradients import trainable_gradients

from kerazoo.layers import InceptionBlock, ResidualBlock, SiameseEncoder, StereoXception


def test_inception_on_the_chapter_input():
    x = np.zeros((10, 128, 128, 3), "float32")
    y = InceptionBlock(128, strides=2)(x)
    # Four 128-filter branches at half resolution.
    assert tuple(y.shape) == (10, 64, 64, 4 * 128)


def test_residual_block_equals_the_chapter_graph():
    # y = conv(conv(conv(x))); y = add([y, x]), all 3x3 'same' relu, 128 filters.
    x = np.random.default_rng(0).standard_normal((2, 12, 12, 128)).astype("float32")
    block = ResidualBlock()
    out = block(x)
    inputs = keras.Input((12, 12, 128))
    convs = [keras.layers.Conv2D(128, 3, activation="relu", padding="same")
             for _ in range(3)]
    y = inputs
    for conv in convs:
        y = conv(y)
    chapter = keras.Model(inputs, keras.layers.add([y, inputs]))
    for conv, step in zip(convs, block.steps):
        conv.set_weights(step[0].get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out), chapter.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-4)


def test_shared_lstm_matches_the_chapter_model():
    lstm = keras.layers.LSTM(32)
    left, right = keras.Input((None, 128)), keras.Input((None, 128))
    merged = keras.layers.concatenate([lstm(left), lstm(right)], axis=-1)
    chapter = keras.Model([left, right], keras.layers.Dense(1, activation="sigmoid")(merged))

    left2, right2 = keras.Input((None, 128)), keras.Input((None, 128))
    siamese = SiameseEncoder(keras.layers.LSTM(32),
                             head=keras.layers.Dense(1, activation="sigmoid"))
    model = keras.Model([left2, right2], siamese([left2, right2]))
    assert model.output_shape == chapter.output_shape == (None, 1)
    assert model.count_params() == chapter.count_params() == 4 * 32 * (128 + 32 + 1) + 65
    model.set_weights(chapter.get_weights())
    x = np.random.default_rng(1).standard_normal((3, 7, 128)).astype("float32")
    y = np.random.default_rng(2).standard_normal((3, 7, 128)).astype("float32")
    np.testing.assert_allclose(model.predict([x, y], verbose=0),
                               chapter.predict([x, y], verbose=0), rtol=1e-5, atol=1e-6)


def _sequences(seed, n=4):
    return np.random.default_rng(seed).standard_normal((n, 6, 5)).astype("float32")


def test_siamese_identical_inputs_give_identical_embeddings():
    siamese = SiameseEncoder(keras.layers.LSTM(8), merge="concat")
    x = _sequences(0)
    out = keras.ops.convert_to_numpy(siamese([x, x]))
    np.testing.assert_array_equal(out[:, :8], out[:, 8:])
    assert np.abs(keras.ops.convert_to_numpy(SiameseEncoder(merge="abs_diff")([x, x]))).max() == 0


@pytest.mark.parametrize("merge", ["abs_diff", "product", "cosine"])
def test_symmetric_merges_ignore_input_order(merge):
    siamese = SiameseEncoder(keras.layers.GRU(6), merge=merge,
                             head=keras.layers.Dense(1, activation="sigmoid"))
    a, b = _sequences(1), _sequences(2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(siamese([a, b])),
                               keras.ops.convert_to_numpy(siamese([b, a])), rtol=1e-6, atol=1e-6)


def test_siamese_concat_is_order_sensitive():
    siamese = SiameseEncoder(keras.layers.GRU(6))
    a, b = _sequences(1), _sequences(2)
    assert not np.allclose(keras.ops.convert_to_numpy(siamese([a, b])),
                           keras.ops.convert_to_numpy(siamese([b, a])))


def test_gradients_reach_the_one_encoder_from_both_branches():
    encoder = keras.layers.LSTM(8)
    left, right = keras.Input((6, 5)), keras.Input((6, 5))
    model = keras.Model([left, right], SiameseEncoder(encoder)([left, right]))
    assert len(model.trainable_variables) == len(encoder.trainable_variables) == 3
    x = [_sequences(3), _sequences(4)]
    from_left = trainable_gradients(model, x, lambda y: keras.ops.sum(y[:, :8]))
    from_right = trainable_gradients(model, x, lambda y: keras.ops.sum(y[:, 8:]))
    both = trainable_gradients(model, x, lambda y: keras.ops.sum(y))
    for gl, gr, gb in zip(from_left, from_right, both):
        assert np.abs(gl).sum() > 0 and np.abs(gr).sum() > 0
        np.testing.assert_allclose(gb, gl + gr, rtol=1e-4, atol=1e-6)


def test_stereo_xception_holds_one_base():
    stereo = StereoXception(input_shape=(71, 71, 3))
    xception = keras.applications.Xception(include_top=False, weights=None,
                                           input_shape=(71, 71, 3))
    left = keras.Input((71, 71, 3))
    right = keras.Input((71, 71, 3))
    model = keras.Model([left, right], stereo([left, right]))
    assert stereo.count_params() == model.count_params() == xception.count_params()
    assert model.output_shape == (None, 3, 3, 2 * 2048)


def test_stereo_xception_levels_shapes_and_sharing():
    stereo = StereoXception(levels=[2, 4, 8, 16, 32], output="both")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 96, 128, 3)).astype("float32")
    outs = [keras.ops.convert_to_numpy(o) for o in stereo([x, x])]
    shapes = [o.shape for o in outs]
    assert shapes == [(1, 45, 61, 128)] * 2 + [(1, 23, 31, 256)] * 2 + [(1, 12, 16, 728)] * 2 \
        + [(1, 6, 8, 1024)] * 2 + [(1, 3, 4, 2048)] * 2
    for left, right in zip(outs[0::2], outs[1::2]):
        np.testing.assert_array_equal(left, right)  # same weights, same view
    assert stereo.compute_output_shape([(1, 96, 128, 3)] * 2) == [
        (1,) + s[1:] for s in shapes]


def test_stereo_custom_base_same_weights_on_both_views():
    stereo = StereoXception(base=tiny_base(), output="both")
    a = np.random.default_rng(0).standard_normal((1, 16, 16, 3)).astype("float32")
    b = np.random.default_rng(1).standard_normal((1, 16, 16, 3)).astype("float32")
    la, rb = stereo([a, b])
    rb2, la2 = stereo([b, a])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(la), keras.ops.convert_to_numpy(la2))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(rb), keras.ops.convert_to_numpy(rb2))
