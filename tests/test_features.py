"""kerazoo.features: the feature pyramid of kerazoo's backbones and of
keras.applications models, keyed by stride; shared weights, saving, errors.
(keras-hub backbones: tests/test_keras_hub.py.)"""

import keras
import numpy as np
import pytest

import kerazoo
from kerazoo import features

# What a person reading Xception's code would pick: the deepest layer before
# each downsampling.
XCEPTION_LAYERS = {
    2: "block2_sepconv2_bn",
    4: "block3_sepconv2_bn",
    8: "block4_sepconv2_bn",
    16: "block13_sepconv2_bn",
    32: "block14_sepconv2_act",
}


def test_xception_levels_are_the_deepest_layer_at_each_stride():
    model = keras.applications.Xception(weights=None, include_top=False)
    assert features.pyramid_layers(model) == XCEPTION_LAYERS
    assert features.pyramid_layers(model, strides=[16, 4]) == {
        4: XCEPTION_LAYERS[4],
        16: XCEPTION_LAYERS[16],
    }


@pytest.mark.parametrize("name", [e.name for e in kerazoo.list_entries("backbone") if e.pyramid])
def test_every_kerazoo_backbone_has_a_five_level_pyramid(name):
    model = kerazoo.create(name, weights=None)
    extractor = features.feature_extractor(model)
    assert list(extractor.output) == ["P1", "P2", "P3", "P4", "P5"]
    x = np.random.default_rng(0).uniform(0, 255, (1, 96, 96, 3)).astype("float32")
    maps = extractor(x)
    for key, value in maps.items():
        stride = 2 ** int(key[1:])
        # "valid" padding loses a pixel or two per level, never a level.
        assert abs(value.shape[1] - 96 / stride) <= 96 / stride / 2 + 1, (key, value.shape)
    # The deepest level is the backbone's own output.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(maps["P5"]),
        keras.ops.convert_to_numpy(model(x)),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "application,expected",
    [
        ("MobileNetV2", {2: "block_1_expand_relu", 8: "block_6_expand_relu", 32: "out_relu"}),
        (
            "ResNet50",
            {
                2: "conv1_relu",
                4: "conv2_block3_out",
                8: "conv3_block4_out",
                16: "conv4_block6_out",
                32: "conv5_block3_out",
            },
        ),
    ],
)
def test_keras_applications_models(application, expected):
    model = getattr(keras.applications, application)(
        weights=None, include_top=False, input_shape=(64, 64, 3)
    )
    found = features.pyramid_layers(model)
    assert {s: found[s] for s in expected} == expected


def test_extractor_shares_weights_and_saves(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(
        weights=None, include_top=False, input_shape=(64, 64, 3), alpha=0.35
    )
    extractor = features.feature_extractor(model, strides=(4, 16))
    assert {id(v) for v in extractor.weights} <= {id(v) for v in model.weights}
    x = np.random.default_rng(1).standard_normal((2, 64, 64, 3)).astype("float32")
    expected = {k: keras.ops.convert_to_numpy(v) for k, v in extractor(x).items()}
    assert {k: v.shape for k, v in expected.items()} == {
        "P2": (2, 16, 16, 48),
        "P4": (2, 4, 4, 192),
    }
    extractor.save(tmp_path / "features.keras")
    loaded = keras.saving.load_model(tmp_path / "features.keras", safe_mode=True)
    for key, value in loaded(x).items():
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(value), expected[key], rtol=1e-5, atol=1e-5
        )


@pytest.mark.parametrize(
    "strides,match",
    [
        (3, "received strides=3"),
        ([], r"received strides=\[\]"),
        ([4, 4], r"received strides=\[4, 4\]"),
        (64, r"\[64\] not found in 'tiny'; it has strides \[2, 4\]"),
    ],
)
def test_bad_strides_raise_value_error(strides, match):
    from conftest import tiny_base

    with pytest.raises(ValueError, match=match):
        features.pyramid_layers(tiny_base(), strides)


def test_models_that_are_not_one_image_backbone_are_refused():
    a, b = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    with pytest.raises(ValueError, match="must take one image input"):
        features.pyramid_layers(keras.Model([a, b], keras.layers.Add()([a, b])))
    with pytest.raises(ValueError, match="must be a functional Keras model"):
        features.feature_extractor(keras.layers.Dense(3))
