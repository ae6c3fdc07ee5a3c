"""kerazoo.testing.check_layer has teeth: broken layers fail it."""

import keras
import pytest
from keras import ops

from kerazoo.testing import check_layer


@keras.saving.register_keras_serializable(package="kerazoo_tests")
class DeadWeight(keras.layers.Layer):
    """A dense layer with a second kernel that never reaches the output."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.unused = self.add_weight(shape=(input_shape[-1], self.units), name="unused")

    def call(self, x):
        return ops.matmul(x, self.kernel)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="kerazoo_tests")
class Overflows(keras.layers.Layer):
    """Fine in float32, inf in float16: squares of large activations."""

    def call(self, x):
        return ops.square(x * 1000.0)

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="kerazoo_tests")
class Sloppy(keras.layers.Layer):
    """Finite under mixed precision, but far from its float32 self."""

    def call(self, x):
        if keras.backend.standardize_dtype(self.compute_dtype) == "float32":
            return x
        return x + 1.0

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="kerazoo_tests")
class AlwaysFloat32(keras.layers.Layer):
    """Right values, wrong dtype: casts its output to float32 under any policy."""

    def call(self, x):
        return ops.cast(x * 2.0, "float32")

    def compute_output_shape(self, input_shape):
        return input_shape


def test_float32_outputs_under_a_mixed_policy_fail():
    with pytest.raises(
        AssertionError,
        match=r"mixed_float16: output dtypes \{'float32'\} != "
        "float16",
    ):
        check_layer(AlwaysFloat32, {}, input_shape=(2, 8), run_saving=False)


def test_a_weight_that_never_reaches_the_output_fails():
    with pytest.raises(AssertionError, match=r"left 1 of 2 trainable weights unchanged.*unused"):
        check_layer(DeadWeight, {"units": 3}, input_shape=(2, 4), run_saving=False)


def test_infinite_mixed_precision_outputs_fail():
    with pytest.raises(AssertionError, match="mixed_float16: outputs are not finite"):
        check_layer(Overflows, {}, input_shape=(2, 8), run_saving=False)


def test_mixed_precision_far_from_float32_fails():
    with pytest.raises(AssertionError, match="differ from float32 by"):
        check_layer(Sloppy, {}, input_shape=(2, 8), run_saving=False)


def test_a_sound_layer_passes_and_says_what_it_checked():
    report = check_layer(
        keras.layers.Dense,
        {"units": 3},
        input_shape=(2, 4),
        expected_output_shape=(2, 3),
        expected_num_trainable_weights=2,
    )
    assert report["training"].endswith("all 2 trainable weights moved")
    assert report["mixed_float16"].startswith("float16, within")
