"""kerazoo.backbones: weights resolved once and loaded, preprocessing inside
the model, the registry's pretrained-weights table, argument errors."""

import keras
import numpy as np
import pytest

import kerazoo
from kerazoo import weights as W
from kerazoo.layers import StereoXception

from _h5 import write_keras_applications_h5
from conftest import copy_weights, offline_manifest


def test_backbone_loads_resolved_weights_and_carries_preprocessing(
    weights_env, generated, tmp_path
):
    copy_weights(generated, "inception_v3_notop", weights_env["user"])
    model = kerazoo.backbones.inception_v3(
        weights="imagenet", pooling="avg", input_shape=(75, 75, 3)
    )
    reference = generated["models"]["inception_v3_notop"]
    x = np.random.default_rng(0).uniform(0, 255, (2, 75, 75, 3)).astype("float32")
    base_out = keras.ops.convert_to_numpy(
        keras.layers.GlobalAveragePooling2D()(reference(x / 127.5 - 1.0))
    )
    np.testing.assert_allclose(model.predict(x, verbose=0), base_out, rtol=1e-4, atol=1e-4)
    path = tmp_path / "inception.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), base_out, rtol=1e-4, atol=1e-4)


def _assert_same_weights(model, reference):
    got, want = model.get_weights(), reference.get_weights()
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_backbone_from_a_path_and_your_own_weights(weights_env, generated, tmp_path):
    own = tmp_path / "finetuned.h5"
    keras.utils.set_random_seed(7)
    reference = keras.applications.Xception(include_top=False, weights=None)
    write_keras_applications_h5(reference, own)
    model = kerazoo.backbones.xception(weights=own, include_preprocessing=False)
    _assert_same_weights(model, reference)  # every value, not only the count
    inception_file = generated["root"] / generated["files"]["inception_v3_notop"]["file"]
    with pytest.raises(W.WeightsVerificationError, match="holds weights for inception_v3_notop"):
        kerazoo.backbones.xception(weights=inception_file)


def test_backbone_from_a_keras_3_weights_file(tmp_path):
    keras.utils.set_random_seed(8)
    reference = keras.applications.Xception(include_top=False, weights=None)
    reference.save_weights(tmp_path / "mine.weights.h5")
    model = kerazoo.backbones.xception(
        weights=tmp_path / "mine.weights.h5", include_preprocessing=False
    )
    _assert_same_weights(model, reference)
    inception = keras.applications.InceptionV3(include_top=False, weights=None)
    inception.save_weights(tmp_path / "other.weights.h5")
    with pytest.raises(W.WeightsVerificationError, match="other.weights.h5 does not fit"):
        kerazoo.backbones.xception(weights=tmp_path / "other.weights.h5")


def test_stereo_xception_imagenet_goes_through_the_same_resolution(
    weights_env, generated, monkeypatch, tmp_path
):
    copy_weights(generated, "xception_notop", weights_env["package"])
    stereo = StereoXception(weights="imagenet", input_shape=(71, 71, 3))
    want = generated["models"]["xception_notop"].get_layer("block1_conv1").get_weights()[0]
    got = stereo.features.get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_array_equal(got, want)
    offline_manifest(monkeypatch, tmp_path, generated["files"])
    (weights_env["package"] / generated["files"]["xception_notop"]["file"]).unlink()
    with pytest.raises(W.WeightsNotFoundError, match="kerazoo weights import"):
        StereoXception(weights="imagenet")


def test_decode_top5(weights_env, generated):
    copy_weights(generated, "imagenet_class_index", weights_env["cache"])
    preds = np.full((2, 1000), 1e-4, "float32")
    preds[0, [3, 7, 1, 999, 500]] = [0.5, 0.2, 0.1, 0.05, 0.01]
    top = kerazoo.backbones.decode(preds, top=5)
    assert [t[1] for t in top[0]] == ["class_3", "class_7", "class_1", "class_999", "class_500"]
    assert top[0][0] == ("n00000003", "class_3", pytest.approx(0.5))
    with pytest.raises(ValueError, match=r"received: predictions.shape=\(2, 10\)"):
        kerazoo.backbones.decode(np.zeros((2, 10)))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"pooling": "sum"}, "received: pooling='sum'"),
        ({"weights": 3}, "received: weights=3"),
        ({"include_top": True, "classes": 10}, "received: classes=10"),
        ({"input_shape": (32, 32, 3)}, r"received: input_shape=\(32, 32, 3\)"),
    ],
)
def test_backbone_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kerazoo.backbones.xception(**kwargs)


def test_backbones_are_registered():
    names = {e.name for e in kerazoo.list_entries("backbone")}
    assert names == {"inception_v3", "stereo_xception_stem", "xception"}
    model = kerazoo.create("xception", weights=None, include_top=True, include_preprocessing=False)
    assert model.output_shape == (None, 1000)


def test_imagenet_weights_are_hashed_once(weights_env, generated, monkeypatch):
    copy_weights(generated, "xception_notop", weights_env["user"])
    hashed = []
    real = W.file_hash
    monkeypatch.setattr(
        W, "file_hash", lambda path, *a, **k: hashed.append(path) or real(path, *a, **k)
    )
    kerazoo.backbones.xception(weights="imagenet", input_shape=(71, 71, 3))
    assert len(hashed) == 1
    # A path that resolve() returned is loaded without a second hash.
    hashed.clear()
    path = W.resolve("xception_notop")
    kerazoo.backbones.xception(weights=path, input_shape=(71, 71, 3))
    assert len(hashed) == 1


def test_backbones_carry_their_pretrained_weights():
    entry = kerazoo.registry.get("xception")
    (imagenet,) = entry.weights
    assert imagenet.name == "imagenet"
    assert (
        imagenet.file_for(include_top=False)
        == "xception_notop"
        == kerazoo.backbones.weights_file("xception")
    )
    listed = entry.as_dict()["weights"][0]
    assert (
        listed["files"]["notop"]["file"] == "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"
    )
    assert listed["files"]["top"]["hash"] == W.entry("xception")["hash"]
    assert "[-1, 1]" in listed["preprocessing"]
    with pytest.raises(ValueError, match="received: weights='jft'"):
        kerazoo.backbones.weights_file("xception", "jft")
