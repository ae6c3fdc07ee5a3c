"""SiameseEncoder (7.150): the chapter's shared LSTM, symmetry, one encoder's
gradients from both branches, argument errors."""

import keras
import numpy as np
import pytest
from gradients import trainable_gradients

from kerazoo.layers import SiameseEncoder


def test_shared_lstm_matches_the_chapter_model():
    lstm = keras.layers.LSTM(32)
    left, right = keras.Input((None, 128)), keras.Input((None, 128))
    merged = keras.layers.concatenate([lstm(left), lstm(right)], axis=-1)
    chapter = keras.Model([left, right], keras.layers.Dense(1, activation="sigmoid")(merged))

    left2, right2 = keras.Input((None, 128)), keras.Input((None, 128))
    siamese = SiameseEncoder(
        keras.layers.LSTM(32), head=keras.layers.Dense(1, activation="sigmoid")
    )
    model = keras.Model([left2, right2], siamese([left2, right2]))
    assert model.output_shape == chapter.output_shape == (None, 1)
    assert model.count_params() == chapter.count_params() == 4 * 32 * (128 + 32 + 1) + 65
    model.set_weights(chapter.get_weights())
    x = np.random.default_rng(1).standard_normal((3, 7, 128)).astype("float32")
    y = np.random.default_rng(2).standard_normal((3, 7, 128)).astype("float32")
    np.testing.assert_allclose(
        model.predict([x, y], verbose=0), chapter.predict([x, y], verbose=0), rtol=1e-5, atol=1e-6
    )


def _sequences(seed, n=4):
    return np.random.default_rng(seed).standard_normal((n, 6, 5)).astype("float32")


def test_siamese_identical_inputs_give_identical_embeddings():
    siamese = SiameseEncoder(keras.layers.LSTM(8), merge="concat")
    x = _sequences(0)
    out = keras.ops.convert_to_numpy(siamese([x, x]))
    np.testing.assert_array_equal(out[:, :8], out[:, 8:])
    assert np.abs(keras.ops.convert_to_numpy(SiameseEncoder(merge="abs_diff")([x, x]))).max() == 0


@pytest.mark.parametrize("merge", ["abs_diff", "product", "cosine", "euclidean"])
def test_symmetric_merges_ignore_input_order(merge):
    siamese = SiameseEncoder(
        keras.layers.GRU(6), merge=merge, head=keras.layers.Dense(1, activation="sigmoid")
    )
    a, b = _sequences(1), _sequences(2)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(siamese([a, b])),
        keras.ops.convert_to_numpy(siamese([b, a])),
        rtol=1e-6,
        atol=1e-6,
    )


def test_euclidean_merge_is_the_distance_of_the_two_encodings():
    encoder = keras.layers.Dense(4)
    siamese = SiameseEncoder(encoder, merge="euclidean")
    a, b = _sequences(1)[:, 0], _sequences(2)[:, 0]
    distance = keras.ops.convert_to_numpy(siamese([a, b]))
    ea, eb = (keras.ops.convert_to_numpy(encoder(x)) for x in (a, b))
    np.testing.assert_allclose(distance[:, 0], np.linalg.norm(ea - eb, axis=-1), rtol=1e-5)
    # At distance 0 the value is ~0 and its gradient finite (no NaN from sqrt).
    same = keras.ops.convert_to_numpy(siamese([a, a]))
    assert same.max() < 1e-3
    gradients = trainable_gradients(
        keras.Model(*_two_inputs(siamese)), [a, a], lambda y: keras.ops.sum(y)
    )
    assert all(np.isfinite(g).all() for g in gradients)


def test_cosine_merge_of_a_zero_encoding_is_zero_not_nan():
    """An encoder that outputs zeros (a ReLU dead on this input) gives a
    cosine of 0, and finite gradients: the epsilon in the norm."""
    encoder = keras.layers.Dense(4, kernel_initializer="zeros", bias_initializer="zeros")
    siamese = SiameseEncoder(encoder, merge="cosine")
    a, b = _sequences(1)[:, 0], _sequences(2)[:, 0]
    cosine = keras.ops.convert_to_numpy(siamese([a, b]))
    np.testing.assert_array_equal(cosine, np.zeros((len(a), 1), "float32"))
    gradients = trainable_gradients(
        keras.Model(*_two_inputs(siamese)), [a, b], lambda y: keras.ops.sum(y)
    )
    assert all(np.isfinite(g).all() for g in gradients)


def _two_inputs(layer):
    left, right = keras.Input((5,)), keras.Input((5,))
    return [left, right], layer([left, right])


def test_siamese_concat_is_order_sensitive():
    siamese = SiameseEncoder(keras.layers.GRU(6))
    a, b = _sequences(1), _sequences(2)
    assert not np.allclose(
        keras.ops.convert_to_numpy(siamese([a, b])), keras.ops.convert_to_numpy(siamese([b, a]))
    )


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


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"merge": "sum"}, "received: merge='sum'"),
        ({"encoder": "lstm"}, "received: encoder='lstm'"),
        ({"head": 3}, "received: head=3"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SiameseEncoder(**kwargs)


def test_inputs_the_encoder_cannot_take_are_refused_plainly():
    with pytest.raises(ValueError, match="encoder 'lstm' expects 3D inputs") as error:
        SiameseEncoder()([np.zeros((2, 4), "float32")] * 2)
    assert "\x1b[" not in str(error.value)
