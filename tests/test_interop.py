"""Any Keras model can be the shared base: a keras-cv backbone (random init)."""

import keras
import numpy as np

from kerazoo.layers import SiameseEncoder, StereoXception
from kerazoo.testing import check_layer

from conftest import requires_extra

pytestmark = requires_extra("keras_cv", "cv")


def _resnet():
    import keras_cv

    # A small ResNet from keras-cv's generic backbone class: no preset, no download.
    return keras_cv.models.ResNetBackbone(
        stackwise_filters=[8, 16],
        stackwise_blocks=[1, 1],
        stackwise_strides=[1, 2],
        include_rescaling=False,
        input_shape=(None, None, 3),
    )


def test_keras_cv_backbone_as_the_stereo_base():
    check_layer(
        StereoXception,
        lambda: {"base": _resnet(), "output_mode": "both"},
        input_shape=[(2, 32, 32, 3)] * 2,
        expected_output_shape=[(2, 4, 4, 64)] * 2,
        mixed_precision_policies=("mixed_float16",),
    )


def test_keras_cv_backbone_as_a_siamese_encoder():
    def kwargs():
        encoder = keras.Sequential(
            [keras.Input((32, 32, 3)), _resnet(), keras.layers.GlobalAveragePooling2D()]
        )
        return {"encoder": encoder, "merge": "cosine"}

    report = check_layer(
        SiameseEncoder,
        kwargs,
        input_shape=[(2, 32, 32, 3)] * 2,
        expected_output_shape=(2, 1),
        mixed_precision_policies=(),
    )
    assert report["saving"]
    x = np.random.default_rng(0).standard_normal((1, 32, 32, 3)).astype("float32")
    same = SiameseEncoder(**kwargs())([x, x])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(same), 1.0, rtol=1e-5)
