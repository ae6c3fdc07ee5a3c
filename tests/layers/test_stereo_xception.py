"""StereoXception (7.160): one base for two views, levels, custom bases,
the 0.1 `output` name, argument errors."""

import keras
import numpy as np
import pytest

from kerazoo.layers import SiameseEncoder, StereoXception
from kerazoo.layers.two_view import TwoViewLayer

from conftest import tiny_base

IMG = (2, 16, 16, 3)


def test_stereo_xception_holds_one_base():
    stereo = StereoXception(input_shape=(71, 71, 3))
    xception = keras.applications.Xception(include_top=False, weights=None, input_shape=(71, 71, 3))
    left = keras.Input((71, 71, 3))
    right = keras.Input((71, 71, 3))
    model = keras.Model([left, right], stereo([left, right]))
    assert stereo.count_params() == model.count_params() == xception.count_params()
    assert model.output_shape == (None, 3, 3, 2 * 2048)


def test_stereo_xception_levels_shapes_and_sharing():
    stereo = StereoXception(levels=[2, 4, 8, 16, 32], output_mode="both")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 96, 128, 3)).astype("float32")
    outs = [keras.ops.convert_to_numpy(o) for o in stereo([x, x])]
    shapes = [o.shape for o in outs]
    assert (
        shapes
        == [(1, 45, 61, 128)] * 2
        + [(1, 23, 31, 256)] * 2
        + [(1, 12, 16, 728)] * 2
        + [(1, 6, 8, 1024)] * 2
        + [(1, 3, 4, 2048)] * 2
    )
    for left, right in zip(outs[0::2], outs[1::2]):
        np.testing.assert_array_equal(left, right)  # same weights, same view
    assert stereo.compute_output_shape([(1, 96, 128, 3)] * 2) == [(1,) + s[1:] for s in shapes]


def test_stereo_custom_base_same_weights_on_both_views():
    stereo = StereoXception(base=tiny_base(), output_mode="both")
    a = np.random.default_rng(0).standard_normal((1, 16, 16, 3)).astype("float32")
    b = np.random.default_rng(1).standard_normal((1, 16, 16, 3)).astype("float32")
    la, rb = stereo([a, b])
    rb2, la2 = stereo([b, a])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(la), keras.ops.convert_to_numpy(la2))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(rb), keras.ops.convert_to_numpy(rb2))


def test_frozen_base_has_no_trainable_weights():
    stereo = StereoXception(base=tiny_base(), trainable_base=False)
    stereo([np.zeros(IMG, "float32")] * 2)
    assert stereo.trainable_weights == [] and len(stereo.non_trainable_weights) == 4


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"output_mode": "stack"}, "received: output_mode='stack'"),
        ({"levels": 3}, "received: levels=3"),
        ({"levels": []}, r"received: levels=\[\]"),
        ({"levels": [4, 4]}, r"received: levels=\[4, 4\]"),
        ({"levels": 64}, r"it has strides \[2, 4, 8, 16, 32\]\), received: levels=64"),
        ({"input_shape": (64, 64, 1)}, r"received: input_shape=\(64, 64, 1\)"),
        ({"base": "xception"}, "received: base='xception'"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        StereoXception(**kwargs)


def test_stereo_custom_base_argument_errors():
    with pytest.raises(ValueError, match="received: weights='w.h5'"):
        StereoXception(base=tiny_base(), weights="w.h5")
    with pytest.raises(ValueError, match=r"it has strides \[2, 4\]\), received: levels=8"):
        StereoXception(base=tiny_base(), levels=8)
    with pytest.raises(ValueError, match=r"not found: \['nope'\]"):
        StereoXception(base=tiny_base(), feature_layers=["c1", "nope"])


def test_levels_of_a_custom_base_are_found_by_stride():
    # kerazoo.features traces the base: no layer names needed.
    stereo = StereoXception(base=tiny_base(), levels=[4, 2], output_mode="both")
    shapes = [tuple(f.shape) for f in stereo([np.zeros(IMG, "float32")] * 2)]
    h, w = IMG[1:3]
    assert shapes == [(IMG[0], h // 4, w // 4, 8)] * 2 + [(IMG[0], h // 2, w // 2, 4)] * 2


def test_output_mode_was_called_output():
    # 0.1's argument name still works, and the config says `output_mode`.
    stereo = StereoXception(base=tiny_base(), output="both")
    assert stereo.output_mode == "both" and stereo.get_config()["output_mode"] == "both"
    assert "output" not in stereo.get_config()


def test_both_two_view_layers_share_one_base_class():
    assert issubclass(StereoXception, TwoViewLayer) and issubclass(SiameseEncoder, TwoViewLayer)
    assert StereoXception.shared_attribute == "features"
    assert SiameseEncoder.shared_attribute == "encoder"


@pytest.mark.parametrize(
    "shape,match",
    [
        ((1, 96, 96, 1), "takes 3-channel views"),
        ((1, 40, 40, 3), "needs views of at least 71x71"),
    ],
)
def test_views_the_base_cannot_take_are_refused_plainly(shape, match):
    with pytest.raises(ValueError, match=match) as error:
        StereoXception()([np.zeros(shape, "float32")] * 2)
    assert "\x1b[" not in str(error.value)


def test_a_config_never_fetches_or_opens_weights_while_loading(monkeypatch):
    """Every config kerazoo writes says `weights: None` (they are in the
    variables); a crafted one naming "imagenet" or a path must not start a
    download or open a file at load time."""
    from kerazoo import weights as weights_lib

    opened = []
    monkeypatch.setattr(weights_lib, "resolve", lambda *a, **k: opened.append(a) or 1 / 0)
    layer = StereoXception(input_shape=(71, 71, 3), levels=2)
    config = keras.saving.serialize_keras_object(layer)
    assert config["config"]["weights"] is None
    for crafted in ("imagenet", "/etc/passwd"):
        config["config"]["weights"] = crafted
        revived = keras.saving.deserialize_keras_object(config)
        assert isinstance(revived, StereoXception)
    assert opened == []
