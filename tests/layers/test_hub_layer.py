"""HubLayer on a tiny SavedModel exported here (TF-Hub's Reusable SavedModel API)."""

import keras
import numpy as np
import pytest

import kerazoo
from kerazoo.layers import HubLayer
from kerazoo.testing import check_layer

from conftest import requires_extra

needs_tf = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TF-Hub modules are TensorFlow SavedModels"
)
needs_hub = requires_extra("tensorflow_hub", "hub")


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    import tensorflow as tf

    path = str(tmp_path_factory.mktemp("hub") / "tiny_encoder")
    obj = tf.train.Checkpoint()
    w = tf.Variable(tf.random.stateless_normal((4, 3), seed=(1, 2)), name="dense/kernel")
    b = tf.Variable(tf.zeros((3,)), name="dense/bias")
    calls = tf.Variable(0, trainable=False, name="calls")
    obj.w, obj.b, obj.calls = w, b, calls

    @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32), tf.TensorSpec((), tf.bool)])
    def call(x, training=False):
        # Dropout-like behaviour only in training, to check the flag arrives.
        y = tf.nn.tanh(x @ w + b)
        return tf.cond(training, lambda: y * 0.5, lambda: y)

    @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32, name="features")])
    def serve(features):
        return {"embedding": call(features, False), "norm": tf.norm(features, axis=-1)}

    obj.__call__ = call
    # The Reusable SavedModel API: the module lists its variables.
    obj.variables = [w, b, calls]
    obj.trainable_variables = [w, b]
    tf.saved_model.save(obj, path, signatures={"serving_default": serve})
    return path


@needs_tf
@needs_hub
@pytest.mark.parametrize(
    "kwargs,expected_shape,n_trainable",
    [
        ({"trainable": True}, (2, 3), 2),
        ({"trainable": False}, (2, 3), 0),
        ({"signature": "serving_default", "output_key": "embedding", "trainable": True}, (2, 3), 2),
        ({"signature": "serving_default", "output_key": "norm", "output_shape": ()}, (2,), 0),
    ],
)
def test_hub_layer_check_layer(saved_model, kwargs, expected_shape, n_trainable):
    check_layer(
        HubLayer,
        {"handle": saved_model, **kwargs},
        input_shape=(2, 4),
        safe_mode=False,
        expected_output_shape=expected_shape,
        expected_num_trainable_weights=n_trainable,
        expected_num_non_trainable_weights=3 - n_trainable,
    )


@needs_tf
@needs_hub
def test_hub_layer_in_a_functional_model_trains_saves_and_reloads(saved_model, tmp_path):
    x = np.random.default_rng(0).standard_normal((8, 4)).astype("float32")
    y = np.random.default_rng(1).standard_normal((8, 1)).astype("float32")
    inputs = keras.Input((4,))
    hub_layer = HubLayer(saved_model, trainable=True)
    model = keras.Model(inputs, keras.layers.Dense(1)(hub_layer(inputs)))
    before = keras.ops.convert_to_numpy(hub_layer.module_weights[0]).copy()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    after = keras.ops.convert_to_numpy(hub_layer.module_weights[0])
    assert not np.allclose(before, after)  # the module's own variable was trained
    expected = model.predict(x, verbose=0)
    model.save(tmp_path / "hub.keras")
    reloaded = keras.saving.load_model(tmp_path / "hub.keras", safe_mode=False)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)
    # The training flag reaches the module (it halves its output in training).
    eager_train = keras.ops.convert_to_numpy(hub_layer(x, training=True))
    eager_infer = keras.ops.convert_to_numpy(hub_layer(x, training=False))
    np.testing.assert_allclose(eager_train, 0.5 * eager_infer, rtol=1e-6)


@needs_tf
@needs_hub
def test_hub_layer_argument_errors(saved_model, tmp_path):
    with pytest.raises(ValueError, match="received: handle=''"):
        HubLayer("")
    with pytest.raises(ValueError, match="could not be loaded as a SavedModel"):
        HubLayer(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="received: signature='nope'"):
        HubLayer(saved_model, signature="nope")
    layer = HubLayer(saved_model, signature="serving_default", output_key="nope")
    with pytest.raises(ValueError, match="received: output_key='nope'"):
        layer(np.zeros((1, 4), "float32"))

    import tensorflow as tf

    only_signature = tf.train.Checkpoint()
    only_signature.v = tf.Variable(1.0)
    serve = tf.function(
        lambda x: {"y": x * only_signature.v},
        input_signature=[tf.TensorSpec((None, 4), tf.float32)],
    )
    tf.saved_model.save(only_signature, str(tmp_path / "sig"), signatures={"serve": serve})
    with pytest.raises(ValueError, match=r"is not callable; pass `signature`, one of \['serve'\]"):
        HubLayer(str(tmp_path / "sig"))
    assert HubLayer(str(tmp_path / "sig"), signature="serve")(np.ones((2, 4), "float32")).shape == (
        2,
        4,
    )


@pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="non-TF backends only")
def test_hub_layer_refuses_other_backends():
    with pytest.raises(ValueError, match=r"needs the TensorFlow backend .* KERAS_BACKEND="):
        HubLayer("https://tfhub.dev/some/model/1")


@needs_tf
def test_hub_layer_without_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorflow_hub", None)
    with pytest.raises(ImportError, match=r"pip install 'kerazoo\[hub\]'"):
        HubLayer("https://tfhub.dev/some/model/1")


@needs_tf
def test_hub_layer_with_a_broken_extra_says_so(monkeypatch):
    # e.g. setuptools >= 81 removed the pkg_resources that tensorflow-hub imports.
    import builtins

    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name == "tensorflow_hub":
            raise ModuleNotFoundError("No module named 'pkg_resources'", name="pkg_resources")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(
        ImportError,
        match="tensorflow-hub is installed but cannot be imported: No module named 'pkg_resources'",
    ):
        HubLayer("https://tfhub.dev/some/model/1")


def test_hub_layer_is_registered():
    assert kerazoo.registry.get("HubLayer").target is HubLayer


@needs_tf
@needs_hub
def test_safe_mode_refuses_a_hub_layer_and_runs_nothing(tmp_path):
    """A SavedModel's graph can run any op: here one that writes a file when
    called. Under safe_mode (the default of load_model, of kerazoo's loader
    and of deserialize_keras_object) the layer is refused before it loads."""
    import tensorflow as tf

    from kerazoo._io import load_keras_model
    from kerazoo.errors import InputError

    marker = tmp_path / "written_by_the_graph"

    class Writer(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 4), tf.float32)])
        def __call__(self, x):
            tf.io.write_file(str(marker), "pwned")
            return x

    tf.saved_model.save(Writer(), str(tmp_path / "writer"))
    inputs = keras.Input((4,))
    model = keras.Model(inputs, HubLayer(str(tmp_path / "writer"), output_shape=(4,))(inputs))
    model.save(tmp_path / "m.keras")
    marker.unlink(missing_ok=True)  # the build above may have traced it
    with pytest.raises(ValueError, match="deserialization of a `HubLayer`"):
        keras.saving.load_model(tmp_path / "m.keras")
    with pytest.raises(InputError, match="deserialization of a `HubLayer`"):
        load_keras_model(tmp_path / "m.keras")
    config = keras.saving.serialize_keras_object(model.layers[-1])
    with pytest.raises(ValueError, match="deserialization of a `HubLayer`"):
        keras.saving.deserialize_keras_object(config)
    assert not marker.exists()
    # Trusted on purpose, it loads and runs.
    reloaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=False)
    reloaded.predict(np.zeros((1, 4), "float32"), verbose=0)
    assert marker.read_text() == "pwned"
