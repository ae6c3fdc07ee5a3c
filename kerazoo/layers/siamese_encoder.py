"""SiameseEncoder: one encoder, two inputs, one set of weights (section 7.150)."""

from __future__ import annotations

import copy

import keras
from keras import layers, ops

from kerazoo.layers import _checks
from kerazoo.layers.two_view import TwoViewLayer
from kerazoo.options import SIAMESE_MERGES as MERGES
from kerazoo.registry import register


def _as_layer(name, value):
    if value is None or isinstance(value, layers.Layer):
        return value
    if isinstance(value, dict):  # from a config; deserializing consumes it
        return keras.saving.deserialize_keras_object(copy.deepcopy(value))
    raise ValueError(f"`{name}` must be a Keras layer or model, received: {name}={value!r}")


@register("layer")
@keras.saving.register_keras_serializable(package="kerazoo")
class SiameseEncoder(TwoViewLayer):
    """Applies ONE encoder to two inputs and merges the two encodings.

    Section 7.150's shared LSTM: similarity is symmetric, so both sentences go
    through the same layer instance, whose weights learn from both inputs at
    once. Any layer or model can be the encoder; a symmetric merge
    (`abs_diff`, `product`, `cosine`, `euclidean`) makes the output
    independent of the order of the two inputs. `euclidean` outputs the
    distance itself, to train with `kerazoo.losses.ContrastiveLoss`. It
    compares; to extract spatial features of two images side by side, use
    `StereoXception` (both are `TwoViewLayer`s).

    Args:
        encoder: a Keras layer or model applied to both inputs. Defaults to
            `keras.layers.LSTM(32)`, as in the chapter.
        merge: how the two encodings combine. `"concat"` (the chapter's):
            `[e1, e2]`; `"abs_diff"`: `|e1 - e2|`; `"product"`: `e1 * e2`;
            `"cosine"`: cosine similarity, shape `(batch, 1)`; `"euclidean"`:
            `|e1 - e2|_2`, shape `(batch, 1)`.
        head: optional layer applied to the merged encoding, e.g. the
            chapter's `keras.layers.Dense(1, activation="sigmoid")`.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Input shape:
        A list of two tensors that the encoder accepts, e.g. two
        `(batch, steps, features)` sequences for an LSTM.

    Output shape:
        The merged encoding: `(batch, 2 * d)` for `concat`, `(batch, d)` for
        `abs_diff` and `product`, `(batch, 1)` for `cosine` and `euclidean`, where `d` is the
        encoder's output size; the head's output shape if a head is given.

    Example:

    >>> import numpy as np, keras, kerazoo
    >>> left = keras.Input((None, 128))
    >>> right = keras.Input((None, 128))
    >>> siamese = kerazoo.layers.SiameseEncoder(
    ...     keras.layers.LSTM(32), head=keras.layers.Dense(1, activation="sigmoid"))
    >>> model = keras.Model([left, right], siamese([left, right]))
    >>> model.output_shape
    (None, 1)
    >>> siamese.count_params() == 4 * (128 + 32 + 1) * 32 + 64 + 1
    True

    Reference:
        Bromley et al., "Signature Verification using a Siamese Time Delay
        Neural Network", NeurIPS 1993; lecture notes section 7.150.
    """

    def __init__(self, encoder=None, merge="concat", head=None, **kwargs):
        super().__init__(**kwargs)
        self.merge = _checks.one_of("merge", merge, MERGES)
        encoder = _as_layer("encoder", encoder)
        self.encoder = (
            encoder
            if encoder is not None
            else layers.LSTM(32, dtype=self.dtype_policy, name="lstm")
        )
        self.head = _as_layer("head", head)

    def _split(self, input_shape):
        left, right = _checks.two_inputs("SiameseEncoder", input_shape, "a list of two inputs")
        if len(left) != len(right) or left[-1] != right[-1]:
            raise ValueError(
                "SiameseEncoder's two inputs must have the same rank and feature "
                f"size to share one encoder, received {left} and {right}"
            )
        return left, right

    def _merged_shape(self, encoded_shape):
        encoded_shape = tuple(encoded_shape)
        if self.merge == "concat":
            last = None if encoded_shape[-1] is None else 2 * encoded_shape[-1]
            return encoded_shape[:-1] + (last,)
        if self.merge in ("cosine", "euclidean"):
            return encoded_shape[:-1] + (1,)
        return encoded_shape

    def build(self, input_shape):
        left, _ = self._split(input_shape)
        spec = self.encoder.input_spec
        spec = spec[0] if isinstance(spec, (list, tuple)) else spec
        if spec is not None and spec.ndim is not None and spec.ndim != len(left):
            # Keras would say so from deep inside call(), with terminal escapes.
            raise ValueError(
                f"SiameseEncoder's encoder {self.encoder.name!r} expects {spec.ndim}D inputs, "
                f"received input_shape={[left, left]}"
            )
        if not self.encoder.built:
            self.encoder.build(left)
        if self.head is not None and not self.head.built:
            self.head.build(self._merged_shape(self.encoder.compute_output_shape(left)))

    def call(self, inputs, training=None):
        e1, e2 = self.encode_pair(inputs, training=training)
        if self.merge == "concat":
            merged = ops.concatenate([e1, e2], axis=-1)
        elif self.merge == "abs_diff":
            merged = ops.abs(ops.subtract(e1, e2))
        elif self.merge == "product":
            merged = ops.multiply(e1, e2)
        elif self.merge == "euclidean":
            # epsilon under the root: its gradient is finite at distance 0.
            squared = ops.sum(ops.square(ops.subtract(e1, e2)), axis=-1, keepdims=True)
            merged = ops.sqrt(ops.maximum(squared, keras.config.epsilon()))
        else:
            # Normalise in float32-safe form: epsilon keeps zero vectors finite.
            eps = keras.config.epsilon()
            n1 = ops.sqrt(ops.sum(ops.square(e1), axis=-1, keepdims=True) + eps)
            n2 = ops.sqrt(ops.sum(ops.square(e2), axis=-1, keepdims=True) + eps)
            merged = ops.sum(e1 * e2, axis=-1, keepdims=True) / (n1 * n2)
        if self.head is not None:
            merged = self.head(merged, training=training)
        return merged

    def compute_output_shape(self, input_shape):
        left, _ = self._split(input_shape)
        shape = self._merged_shape(self.encoder.compute_output_shape(left))
        if self.head is not None:
            shape = tuple(self.head.compute_output_shape(shape))
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "merge": self.merge,
                "head": (
                    None if self.head is None else keras.saving.serialize_keras_object(self.head)
                ),
            }
        )
        return config
