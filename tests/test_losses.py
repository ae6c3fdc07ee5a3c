"""kerazoo.losses: values against a numpy reference, serialization, a model
compiled with them saved and reloaded, and training that actually separates."""

import keras
import numpy as np
import pytest

from kerazoo.layers import SiameseEncoder
from kerazoo.losses import ContrastiveLoss, TripletLoss


def _contrastive_reference(y, d, margin):
    return np.mean(y * d**2 + (1 - y) * np.maximum(margin - d, 0) ** 2)


def _triplet_reference(y_pred, margin):
    a, p, n = np.split(y_pred, 3, axis=-1)
    return np.mean(np.maximum(((a - p) ** 2).sum(-1) - ((a - n) ** 2).sum(-1) + margin, 0))


@pytest.mark.parametrize("margin", [0.5, 2.0])
def test_contrastive_loss_matches_its_definition(margin):
    rng = np.random.default_rng(0)
    y = (rng.random((16, 1)) < 0.5).astype("float32")
    d = rng.uniform(0, 3, (16, 1)).astype("float32")
    got = float(ContrastiveLoss(margin=margin)(y, d))
    np.testing.assert_allclose(got, _contrastive_reference(y, d, margin), rtol=1e-5)


@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_triplet_loss_matches_its_definition(margin):
    y_pred = np.random.default_rng(1).standard_normal((8, 12)).astype("float32")
    got = float(TripletLoss(margin=margin)(np.zeros((8, 1)), y_pred))
    np.testing.assert_allclose(got, _triplet_reference(y_pred, margin), rtol=1e-5)


@pytest.mark.parametrize("cls", [ContrastiveLoss, TripletLoss])
def test_config_round_trip_and_registry(cls):
    loss = cls(margin=0.7, name="mine")
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(again) is cls and again.margin == 0.7 and again.name == "mine"
    assert keras.saving.get_registered_name(cls) == f"kerazoo>{cls.__name__}"


@pytest.mark.parametrize("cls", [ContrastiveLoss, TripletLoss])
@pytest.mark.parametrize("margin", [0, -1.0, "1", True, None])
def test_bad_margin_raises_value_error(cls, margin):
    with pytest.raises(ValueError, match=f"received margin={margin!r}"):
        cls(margin=margin)


CENTRES = np.random.default_rng(123).standard_normal((4, 6)) * 2


def _clusters(n, seed):
    """Points around 4 fixed centres; a pair matches when both come from one."""
    rng = np.random.default_rng(seed)
    centres = CENTRES
    labels = rng.integers(0, 4, (n, 2))
    same = rng.random(n) < 0.5
    labels[same, 1] = labels[same, 0]
    a = centres[labels[:, 0]] + 0.5 * rng.standard_normal((n, 6))
    b = centres[labels[:, 1]] + 0.5 * rng.standard_normal((n, 6))
    y = (labels[:, 0] == labels[:, 1]).astype("float32")[:, None]
    return [a.astype("float32"), b.astype("float32")], y


def test_contrastive_training_separates_pairs_and_saves(tmp_path):
    keras.utils.set_random_seed(0)
    left, right = keras.Input((6,)), keras.Input((6,))
    siamese = SiameseEncoder(keras.layers.Dense(4), merge="euclidean")
    model = keras.Model([left, right], siamese([left, right]))
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=ContrastiveLoss(margin=2.0))
    x, y = _clusters(512, 0)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=15, batch_size=64, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert after < 0.5 * before
    x_test, y_test = _clusters(256, 1)  # held out
    distance = model.predict(x_test, verbose=0)
    accuracy = ((distance < 1.0) == (y_test > 0.5)).mean()
    assert accuracy > 0.9, accuracy
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    assert isinstance(loaded.loss, ContrastiveLoss) and loaded.loss.margin == 2.0
    np.testing.assert_allclose(loaded.predict(x_test, verbose=0), distance, rtol=1e-5, atol=1e-6)


def test_triplet_training_puts_positives_nearer():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(2)
    n = 512
    label = rng.integers(0, 4, n)
    other = (label + rng.integers(1, 4, n)) % 4

    def around(labels):
        return (CENTRES[labels] + 1.0 * rng.standard_normal((n, 6))).astype("float32")

    anchor, positive, negative = around(label), around(label), around(other)
    encoder = keras.layers.Dense(4)
    inputs = [keras.Input((6,)) for _ in range(3)]
    model = keras.Model(inputs, keras.layers.Concatenate()([encoder(x) for x in inputs]))
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss=TripletLoss(margin=4.0))
    data = [anchor, positive, negative]
    before = model.evaluate(data, np.zeros((n, 1)), verbose=0)
    assert before > 0
    model.fit(data, np.zeros((n, 1)), epochs=15, batch_size=64, verbose=0)
    assert model.evaluate(data, np.zeros((n, 1)), verbose=0) < 0.5 * before
    e = [keras.ops.convert_to_numpy(encoder(x)) for x in data]
    nearer = (((e[0] - e[1]) ** 2).sum(-1) < ((e[0] - e[2]) ** 2).sum(-1)).mean()
    assert nearer > 0.85, nearer


def _matching_loss_by_hand(y_true, y_pred, temperature, edge_weight=0.0):
    """The loss written with numpy: softmax cross-entropy at the (shared)
    true bins, summed over the known pixels of the batch / (their count + 1),
    the pixels whose 3x3 truth spans more than 1 px weighing 1 + edge_weight."""
    depth = y_pred.shape[-1]
    z = y_pred * temperature
    log_p = z - z.max(-1, keepdims=True)
    log_p = log_p - np.log(np.exp(log_p).sum(-1, keepdims=True))
    target = np.maximum(0.0, 1.0 - np.abs(np.arange(depth) - y_true))
    valid = ((y_true[..., 0] >= 0) & (y_true[..., 0] <= depth - 1)).astype("float64")
    # Edge padding: a 3x3 window's replicated border values are already in it.
    padded = np.pad(y_true[..., 0], ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = y_true.shape[1:3]
    windows = np.stack([padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3)])
    valid *= 1.0 + edge_weight * (windows.max(0) - windows.min(0) > 1.0)
    cross = -(target * log_p).sum(-1)
    return (cross * valid).sum() / (valid.sum() + 1.0)


def test_stereo_matching_loss_is_the_cross_entropy_at_the_truth():
    from kerazoo.losses import StereoMatchingLoss

    rng = np.random.default_rng(0)
    y_pred = rng.uniform(-1, 1, (3, 4, 5, 9)).astype("float32")
    y_true = rng.uniform(-3, 11, (3, 4, 5, 1)).astype("float32")  # some unknown, some beyond
    got = float(StereoMatchingLoss(temperature=16.0)(y_true, y_pred))
    np.testing.assert_allclose(got, _matching_loss_by_hand(y_true, y_pred, 16.0), rtol=1e-5)
    loss = StereoMatchingLoss(temperature=4.0)
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(revived, StereoMatchingLoss) and revived.temperature == 4.0
    with pytest.raises(
        ValueError, match="`temperature` must be a positive number, received temperature=0"
    ):
        StereoMatchingLoss(temperature=0)


@pytest.mark.parametrize("edge_weight", [0.0, 3.0])
def test_stereo_matching_loss_weighs_depth_edges(edge_weight):
    from kerazoo.losses import StereoMatchingLoss

    rng = np.random.default_rng(1)
    y_pred = rng.uniform(-1, 1, (2, 6, 7, 9)).astype("float32")
    # Two depths and an unknown patch: edges between them, flat inside.
    y_true = np.full((2, 6, 7, 1), 2.0, "float32")
    y_true[:, :, 4:] = 6.5
    y_true[1, :2, :2] = -1.0
    loss = StereoMatchingLoss(temperature=8.0, edge_weight=edge_weight)
    np.testing.assert_allclose(
        float(loss(y_true, y_pred)),
        _matching_loss_by_hand(y_true, y_pred, 8.0, edge_weight),
        rtol=1e-5,
    )
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert revived.edge_weight == edge_weight


@pytest.mark.parametrize("edge_weight", [-1.0, True, "2"])
def test_stereo_matching_loss_rejects_a_bad_edge_weight(edge_weight):
    from kerazoo.losses import StereoMatchingLoss

    with pytest.raises(
        ValueError,
        match=f"`edge_weight` must be a number >= 0, received edge_weight={edge_weight!r}",
    ):
        StereoMatchingLoss(edge_weight=edge_weight)
