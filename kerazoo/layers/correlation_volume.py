"""CorrelationVolume: a parameter-free stereo matching cost (section 7.160)."""

from __future__ import annotations

import keras
from keras import layers, ops

from kerazoo.layers import _checks
from kerazoo.registry import register


@register("layer")
@keras.saving.register_keras_serializable(package="kerazoo")
class CorrelationVolume(layers.Layer):
    """Correlates left features with right features shifted along the row.

    For a rectified stereo pair a point at column `x` of the left view appears
    at column `x - d` of the right view. For every candidate disparity `d` in
    `0 .. max_disparity` this layer scores how well left feature `(y, x)`
    matches right feature `(y, x - d)`: the mean over channels of their
    product, or (with `normalize=True`) their cosine similarity after removing
    each feature vector's mean, which makes the score insensitive to
    brightness and contrast differences between the two cameras. It has no
    weights: whatever features you give it (e.g. a shared Xception's, from
    `StereoXception(output_mode="both")`) define the matching.

    Args:
        max_disparity: int. Largest disparity scored, in feature pixels; the
            output has `max_disparity + 1` channels.
        normalize: bool. Cosine similarity of mean-removed features (scores in
            [-1, 1]) instead of the plain mean product.
        **kwargs: base layer arguments (`name`, `dtype`).

    Input shape:
        A list of two 4D tensors `[left, right]`, each
        `(batch, height, width, channels)`, of the same shape.

    Output shape:
        `(batch, height, width, max_disparity + 1)`: channel `d` is the score
        of disparity `d`. Where `x - d` falls outside the right view the score
        is the lowest possible (-1 when normalized), so it never wins.

    Example:

    >>> import numpy as np, kerazoo
    >>> right = np.random.default_rng(0).normal(size=(1, 4, 16, 8)).astype("float32")
    >>> left = np.roll(right, 3, axis=2)  # everything 3 pixels further right
    >>> cost = kerazoo.layers.CorrelationVolume(max_disparity=5)([left, right])
    >>> tuple(cost.shape), int(np.argmax(np.asarray(cost)[0, 2, 10]))
    ((1, 4, 16, 6), 3)

    Reference:
        Zbontar & LeCun, "Stereo Matching by Training a Convolutional Neural
        Network to Compare Image Patches", JMLR 2016; Mayer et al., "A Large
        Dataset to Train Convolutional Networks for Disparity, Optical Flow,
        and Scene Flow Estimation" (DispNetC correlation), CVPR 2016.
    """

    def __init__(self, max_disparity, normalize=True, **kwargs):
        super().__init__(**kwargs)
        self.max_disparity = _checks.positive_int("max_disparity", max_disparity)
        self.normalize = bool(normalize)
        self.input_spec = [layers.InputSpec(ndim=4), layers.InputSpec(ndim=4)]

    def build(self, input_shape):
        _checks.two_views("CorrelationVolume", input_shape)

    def _prepare(self, x):
        x = ops.cast(x, self.compute_dtype)
        if not self.normalize:
            return x
        x = x - ops.mean(x, axis=-1, keepdims=True)
        # Computed in float32-safe form: epsilon keeps flat features finite.
        norm = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True) + 1e-6)
        return x / norm

    def call(self, inputs):
        left, right = (self._prepare(x) for x in inputs)
        d_max = self.max_disparity
        # Blocks of `block` left columns against the `2 * block` right columns
        # they can match, as one batched matmul: far less memory traffic than
        # one full-size product per disparity.
        block = d_max + 1
        batch, height, width, channels = (ops.shape(left)[i] for i in range(4))
        blocks = -(-width // block)
        padded = blocks * block
        left = ops.pad(left, [[0, 0], [0, 0], [0, padded - width], [0, 0]])
        left = ops.reshape(left, (batch, height, blocks, block, channels))
        # Right columns x - d_max .. padded - 1 + block - d_max, in blocks.
        right = ops.pad(right, [[0, 0], [0, 0], [d_max, padded + block - d_max - width], [0, 0]])
        right = ops.reshape(right, (batch, height, blocks + 1, block, channels))
        window = ops.concatenate([right[:, :, :-1], right[:, :, 1:]], axis=3)
        scores = ops.matmul(left, ops.swapaxes(window, -1, -2))  # (..., block, 2 * block)
        # Left column i of a block meets right column i + d_max - d of its
        # window: the "skew" reshape turns those diagonals into columns.
        flat = ops.reshape(scores, (batch, height, blocks, 2 * block * block))
        flat = ops.pad(flat, [[0, 0], [0, 0], [0, 0], [0, block]])
        skewed = ops.reshape(flat, (batch, height, blocks, block, 2 * block + 1))
        volume = ops.flip(skewed[..., : d_max + 1], axis=-1)  # channel d = disparity d
        volume = ops.reshape(volume, (batch, height, padded, d_max + 1))[:, :, :width]
        if not self.normalize:
            volume = volume / ops.cast(channels, volume.dtype)
        # Columns x < d have no partner in the right view: lowest score.
        cols = ops.arange(0, width)[:, None]  # (start, stop): jax2onnx needs both
        disps = ops.arange(0, d_max + 1)[None, :]
        outside = ops.cast(cols < disps, "bool")[None, None]
        floor = -1.0 if self.normalize else ops.min(volume) - 1.0
        return ops.where(outside, ops.cast(floor, volume.dtype), volume)

    def compute_output_shape(self, input_shape):
        left = _checks.two_views("CorrelationVolume", input_shape)
        return left[:3] + (self.max_disparity + 1,)

    def get_config(self):
        config = super().get_config()
        config.update({"max_disparity": self.max_disparity, "normalize": self.normalize})
        return config
