"""InceptionBlock: the four-branch Inception module (section 7.140)."""

from __future__ import annotations

import keras
from keras import layers

from kerazoo.layers import _chain, _checks
from kerazoo.registry import register

BRANCHES = ("a", "b", "c", "d")


@register("layer")
@keras.saving.register_keras_serializable(package="kerazoo")
class InceptionBlock(layers.Layer):
    """Four parallel convolution branches concatenated on the channel axis.

    The Inception module of section 7.140: the input splits into
    (a) a strided 1x1 convolution, (b) a 1x1 then a strided 3x3 convolution,
    (c) a strided 3x3 average pooling then a 3x3 convolution and (d) a 1x1
    then two 3x3 convolutions, the last strided. Every branch reaches the same
    spatial size, so their feature maps concatenate on the last axis.

    Args:
        filters: int, or 4 ints (one per branch a, b, c, d). Output channels
            of every convolution of that branch. Defaults to 128, as in the
            chapter.
        strides: int. Stride of the downsampling step of every branch.
        padding: `"same"` or `"valid"`. `"valid"` makes the branches shrink
            by different amounts: the block then raises a `ValueError` when
            it is built, naming each branch's output size.
        activation: activation after every convolution.
        use_batch_norm: bool. Convolution (no bias), batch normalisation, then
            activation, as in InceptionV3.
        kernel_initializer: initializer of every convolution kernel.
        kernel_regularizer: optional regularizer of every kernel.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Input shape:
        4D tensor `(batch, height, width, channels)`.

    Output shape:
        4D tensor `(batch, ceil(height / strides), ceil(width / strides),
        sum(filters))`.

    Example:

    >>> import numpy as np, kerazoo
    >>> x = np.zeros((10, 128, 128, 3), "float32")
    >>> tuple(kerazoo.layers.InceptionBlock(128, strides=2)(x).shape)
    (10, 64, 64, 512)
    >>> tuple(kerazoo.layers.InceptionBlock((16, 32, 8, 8), strides=1)(x).shape)
    (10, 128, 128, 64)

    Reference:
        Szegedy et al., "Going Deeper with Convolutions", CVPR 2015 (the
        Inception module); Szegedy et al., "Rethinking the Inception
        Architecture for Computer Vision", CVPR 2016 (InceptionV3's
        grid-reducing blocks); lecture notes section 7.140.
    """

    def __init__(
        self,
        filters=128,
        strides=2,
        padding="same",
        activation="relu",
        use_batch_norm=False,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = _checks.int_or_n_ints("filters", filters, 4)
        self.strides = _checks.positive_int("strides", strides)
        self.padding = _checks.one_of("padding", padding, ("same", "valid"))
        self.activation = _checks.activation("activation", activation)
        self.use_batch_norm = bool(use_batch_norm)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

        fa, fb, fc, fd = self.filters
        s = self.strides
        # Each branch is a list of (kind, filters, kernel, strides) steps.
        plan = {
            "a": [("conv", fa, 1, s)],
            "b": [("conv", fb, 1, 1), ("conv", fb, 3, s)],
            "c": [("pool", None, 3, s), ("conv", fc, 3, 1)],
            "d": [("conv", fd, 1, 1), ("conv", fd, 3, 1), ("conv", fd, 3, s)],
        }
        self.branches = [self._make_branch(b, plan[b]) for b in BRANCHES]
        self.concat = layers.Concatenate(axis=-1, dtype=self.dtype_policy, name="concat")
        self.input_spec = layers.InputSpec(ndim=4)

    def _make_branch(self, branch, steps):
        ops_ = []
        for i, (kind, filters, kernel, strides) in enumerate(steps, start=1):
            prefix = f"branch_{branch}_{i}"
            if kind == "pool":
                ops_.append(
                    layers.AveragePooling2D(
                        kernel,
                        strides=strides,
                        padding=self.padding,
                        dtype=self.dtype_policy,
                        name=f"{prefix}_pool",
                    )
                )
                continue
            ops_.append(
                layers.Conv2D(
                    filters,
                    kernel,
                    strides=strides,
                    padding=self.padding,
                    # With batch norm right after, a bias is redundant.
                    use_bias=not self.use_batch_norm,
                    activation=None if self.use_batch_norm else self.activation,
                    kernel_initializer=self.kernel_initializer,
                    kernel_regularizer=self.kernel_regularizer,
                    dtype=self.dtype_policy,
                    name=f"{prefix}_conv",
                )
            )
            if self.use_batch_norm:
                ops_.append(layers.BatchNormalization(dtype=self.dtype_policy, name=f"{prefix}_bn"))
                ops_.append(
                    layers.Activation(
                        self.activation, dtype=self.dtype_policy, name=f"{prefix}_act"
                    )
                )
        return ops_

    def _check_input(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"InceptionBlock expects a 4D input (batch, height, width, "
                f"channels), received input_shape={tuple(input_shape)}"
            )
        if input_shape[-1] is None:
            raise ValueError(
                "InceptionBlock needs a known channel count, "
                f"received input_shape={tuple(input_shape)}"
            )

    def _branch_shapes(self, input_shape):
        try:
            return [_chain.output_shape(branch, input_shape) for branch in self.branches]
        except ValueError:  # Keras: "output size would be zero or negative"
            raise ValueError(
                f"InceptionBlock input_shape={tuple(input_shape)} is too small for "
                f"its 3x3 kernels with padding={self.padding!r}; use padding='same'"
            ) from None

    def build(self, input_shape):
        self._check_input(input_shape)
        shapes = self._branch_shapes(input_shape)
        spatial = {s[1:3] for s in shapes}
        if len(spatial) > 1:
            # The chapter's own snippet (default 'valid' padding) hits this:
            # fail here, with the numbers, not inside Concatenate.
            detail = ", ".join(f"branch {b}: {s[1]}x{s[2]}" for b, s in zip(BRANCHES, shapes))
            raise ValueError(
                f"InceptionBlock branches do not line up with padding="
                f"{self.padding!r}, strides={self.strides} on input_shape="
                f"{tuple(input_shape)} ({detail}); use padding='same'."
            )
        for branch in self.branches:
            _chain.build(branch, input_shape)
        self.concat.build(shapes)
        self.input_spec = layers.InputSpec(ndim=4, axes={-1: input_shape[-1]})

    def call(self, inputs, training=None):
        return self.concat([_chain.apply(branch, inputs, training) for branch in self.branches])

    def compute_output_shape(self, input_shape):
        self._check_input(input_shape)
        shapes = self._branch_shapes(input_shape)
        return shapes[0][:3] + (sum(self.filters),)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": list(self.filters),
                "strides": self.strides,
                "padding": self.padding,
                "activation": keras.activations.serialize(self.activation),
                "use_batch_norm": self.use_batch_norm,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
        return config
