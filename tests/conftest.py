import os

# Quiet TensorFlow's C++ logs in test output; the backend itself comes from
# KERAS_BACKEND (tensorflow when unset), which .ci/run sets per run.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


def tiny_base(name="tiny"):
    """A two-conv functional model: a cheap stand-in for Xception."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c1")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="c2")(x)
    return keras.Model(inputs, x, name=name)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.utils.clear_session()
    yield
    keras.config.set_dtype_policy("float32")
