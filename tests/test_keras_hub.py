"""keras-hub, the tested integration: a keras-hub Backbone built from a config
(no download) is the shared base of SiameseEncoder and StereoXception, saves
and reloads, and gives its feature pyramid through kerazoo.features."""

import keras
import numpy as np

from kerazoo import features
from kerazoo.layers import SiameseEncoder, StereoXception
from kerazoo.testing import check_layer

from conftest import requires_extra

pytestmark = requires_extra("keras_hub", "keras-hub")


def _resnet():
    import keras_hub

    # keras-hub's generic ResNet class at its smallest: random weights.
    return keras_hub.models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 64],
        stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2],
        block_type="basic_block",
        image_shape=(None, None, 3),
    )


def _xception():
    import keras_hub

    return keras_hub.models.XceptionBackbone(
        stackwise_conv_filters=[[8, 8], [16, 16], [32, 32]],
        stackwise_pooling=[False, True, True],
        image_shape=(None, None, 3),
    )


def test_keras_hub_backbone_as_the_stereo_base():
    report = check_layer(
        StereoXception,
        lambda: {"base": _resnet(), "output_mode": "both"},
        input_shape=[(2, 32, 32, 3)] * 2,
        expected_output_shape=[(2, 4, 4, 64)] * 2,
        mixed_precision_policies=(),
    )
    assert report["saving"]


def test_keras_hub_backbone_levels_by_stride():
    stereo = StereoXception(base=_xception(), levels=[2, 4], output_mode="both")
    x = np.zeros((1, 32, 32, 3), "float32")
    shapes = [tuple(f.shape) for f in stereo([x, x])]
    # keras-hub's Xception pads "valid", as the original: 32 -> 15 -> 13.
    assert shapes == [(1, 13, 13, 16)] * 2 + [(1, 7, 7, 32)] * 2


def test_keras_hub_backbone_as_a_siamese_encoder():
    def kwargs():
        encoder = keras.Sequential(
            [keras.Input((32, 32, 3)), _xception(), keras.layers.GlobalAveragePooling2D()]
        )
        return {"encoder": encoder, "merge": "euclidean"}

    report = check_layer(
        SiameseEncoder,
        kwargs,
        input_shape=[(2, 32, 32, 3)] * 2,
        expected_output_shape=(2, 1),
        mixed_precision_policies=(),
    )
    assert report["saving"]


def test_declared_pyramid_outputs_are_used_as_they_are():
    backbone = _resnet()
    extractor = features.feature_extractor(backbone)
    assert sorted(extractor.output) == sorted(backbone.pyramid_outputs) == ["P2", "P3"]
    for key, tensor in extractor.output.items():
        assert tensor is backbone.pyramid_outputs[key]


def test_keras_hub_xception_has_no_declared_pyramid_and_gets_one():
    backbone = _xception()
    assert not getattr(backbone, "pyramid_outputs", None)
    extractor = features.feature_extractor(backbone)
    x = np.random.default_rng(0).standard_normal((1, 64, 64, 3)).astype("float32")
    assert {k: tuple(v.shape) for k, v in extractor(x).items()} == {
        "P1": (1, 29, 29, 16),
        "P2": (1, 15, 15, 32),
        "P3": (1, 8, 8, 32),
    }
