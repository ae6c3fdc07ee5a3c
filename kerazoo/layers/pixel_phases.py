"""PixelPhases and MergePixelPhases: atrous convolution at strided cost."""

from __future__ import annotations

import keras
from keras import layers, ops

from kerazoo.layers import _checks
from kerazoo.registry import register


@register("layer")
@keras.saving.register_keras_serializable(package="kerazoo")
class PixelPhases(layers.Layer):
    """Splits an image into its `factor x factor` pixel phases, on the batch axis.

    Phase `(i, j)` holds pixels `(i::factor, j::factor)`. A 3x3 convolution
    dilated by `factor` only ever combines pixels of one phase, so running
    the *undilated* convolution on every phase, then `MergePixelPhases`, gives
    the dilated result (DeepLab's atrous trick) with none of the dilation's
    cost, once for a whole stack of layers instead of once per layer (which is
    what backends do for each dilated convolution). Height and width are
    padded with zeros up to a multiple of `factor` (exact for even sizes; for
    odd ones the last row and column see that padding through later layers).

    Args:
        factor: int, the dilation to undo (2 for Xception's first stride).
        **kwargs: base layer arguments (`name`, `dtype`).

    Input shape:
        4D tensor `(batch, height, width, channels)`.

    Output shape:
        `(factor ** 2 * batch, ceil(height / factor), ceil(width / factor),
        channels)`, phase `(i, j)` at batch rows `(i * factor + j) * batch ...`.

    Example:

    >>> import numpy as np, kerazoo
    >>> x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    >>> phases = kerazoo.layers.PixelPhases(2)(x)
    >>> np.asarray(phases)[:, :, :, 0].tolist()[1]  # phase (0, 1): odd columns
    [[1.0, 3.0], [9.0, 11.0]]
    >>> back = kerazoo.layers.MergePixelPhases(2)([phases, x])
    >>> bool(np.array_equal(np.asarray(back), x))
    True

    Reference:
        Chen et al., "DeepLab: Semantic Image Segmentation with Deep
        Convolutional Nets, Atrous Convolution, and Fully Connected CRFs",
        TPAMI 2018 (atrous convolution; `tf.space_to_batch` does this per layer).
    """

    def __init__(self, factor=2, **kwargs):
        super().__init__(**kwargs)
        self.factor = _checks.positive_int("factor", factor)
        self.input_spec = layers.InputSpec(ndim=4)

    def call(self, inputs):
        f = self.factor
        height, width = ops.shape(inputs)[1], ops.shape(inputs)[2]
        channels = inputs.shape[-1]
        pad_h, pad_w = (-height) % f, (-width) % f
        x = ops.pad(inputs, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])
        h, w = (height + pad_h) // f, (width + pad_w) // f
        # -1, not a computed batch size: exporters (jax2onnx) cannot map a
        # product of symbolic sizes back to an input axis.
        x = ops.reshape(x, (-1, h, f, w, f, channels))
        x = ops.transpose(x, (2, 4, 0, 1, 3, 5))
        return ops.reshape(x, (-1, h, w, channels))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        f = self.factor

        def up(n, k=1):
            return None if n is None else k * n

        return (
            up(batch, f * f),
            None if height is None else -(-height // f),
            None if width is None else -(-width // f),
            channels,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"factor": self.factor})
        return config


@register("layer")
@keras.saving.register_keras_serializable(package="kerazoo")
class MergePixelPhases(layers.Layer):
    """Interleaves `PixelPhases`' phases back into one image of a given size.

    Args:
        factor: int, the `factor` the phases were split with.
        **kwargs: base layer arguments (`name`, `dtype`).

    Input shape:
        A list `[phases, like]`: `phases` of shape `(factor ** 2 * batch, h,
        w, channels)` from `PixelPhases` (or layers after it), and `like`, any
        4D tensor `(batch, height, width, ...)` whose height and width the
        output takes (the image the phases came from).

    Output shape:
        `(batch, height, width, channels)`.

    Example:

    >>> import numpy as np, kerazoo
    >>> x = np.random.default_rng(0).normal(size=(2, 5, 7, 3)).astype("float32")
    >>> phases = kerazoo.layers.PixelPhases(2)(x)
    >>> tuple(phases.shape)
    (8, 3, 4, 3)
    >>> back = kerazoo.layers.MergePixelPhases(2)([phases, x])
    >>> bool(np.array_equal(np.asarray(back), x))
    True

    Reference:
        Chen et al., "DeepLab", TPAMI 2018 (`tf.batch_to_space`).
    """

    def __init__(self, factor=2, **kwargs):
        super().__init__(**kwargs)
        self.factor = _checks.positive_int("factor", factor)
        self.input_spec = [layers.InputSpec(ndim=4), layers.InputSpec(ndim=4)]

    def _check(self, input_shape):
        return _checks.two_inputs("MergePixelPhases", input_shape, "[phases, like]")

    def call(self, inputs):
        phases, like = inputs
        f = self.factor
        h, w = ops.shape(phases)[1], ops.shape(phases)[2]
        height, width = ops.shape(like)[1], ops.shape(like)[2]
        channels = phases.shape[-1]
        x = ops.reshape(phases, (f, f, -1, h, w, channels))
        x = ops.transpose(x, (2, 3, 0, 4, 1, 5))
        x = ops.reshape(x, (-1, h * f, w * f, channels))
        return x[:, :height, :width, :]

    def compute_output_shape(self, input_shape):
        phases, like = self._check(input_shape)
        return (like[0], like[1], like[2], phases[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"factor": self.factor})
        return config
