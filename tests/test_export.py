"""model.export(format="tf_saved_model") of models made of kerazoo layers,
the stereo model included: the reloaded SavedModel gives the same outputs."""

import keras
import numpy as np
import pytest

from kerazoo.layers import InceptionBlock, ResidualBlock, SiameseEncoder
from kerazoo.app.models.stereo import build_stereo_models

# Keras 3.15 exports from torch through torch.export, which fails on these
# models' input structures here: a known gap, left to issue #10 (export).
pytestmark = pytest.mark.skipif(keras.backend.backend() == "torch",
                                reason="tf_saved_model export from the torch backend fails in "
                                       "Keras 3.15 for these models (issue #10)")


def _classifier():
    x_in = keras.Input((16, 16, 3))
    x = InceptionBlock(4, strides=2, use_batch_norm=True)(x_in)
    x = ResidualBlock(8, preactivation=True, use_batch_norm=True)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(x_in, keras.layers.Dense(3)(x))


def _siamese():
    a, b = keras.Input((5, 4)), keras.Input((5, 4))
    return keras.Model([a, b], SiameseEncoder(keras.layers.GRU(6), merge="cosine")([a, b]))


# The stereo views must share one size; JAX's shape-polymorphic export would
# treat them as independent, so that model is exported for a fixed size.
VIEW = keras.InputSpec(shape=(1, 80, 96, 3), dtype="float32")


@pytest.mark.parametrize("build,inputs,signature", [
    (_classifier, lambda r: [r.standard_normal((2, 16, 16, 3))], None),
    (_siamese, lambda r: [r.standard_normal((2, 5, 4)), r.standard_normal((2, 5, 4))], None),
    (lambda: build_stereo_models(8)[0],
     lambda r: [r.uniform(0, 255, (1, 80, 96, 3)), r.uniform(0, 255, (1, 80, 96, 3))],
     [[VIEW, VIEW]]),
], ids=["inception_residual", "siamese", "stereo"])
def test_tf_saved_model_export(tmp_path, build, inputs, signature):
    import tensorflow as tf  # here, not at collection: never in a torch session
    keras.utils.set_random_seed(0)
    model = build()
    x = [a.astype("float32") for a in inputs(np.random.default_rng(0))]
    expected = keras.ops.convert_to_numpy(model(x if len(x) > 1 else x[0], training=False))
    model.export(str(tmp_path / "saved"), format="tf_saved_model", input_signature=signature)
    served = tf.saved_model.load(str(tmp_path / "saved"))
    got = served.serve(x if len(x) > 1 else x[0])
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-4)
