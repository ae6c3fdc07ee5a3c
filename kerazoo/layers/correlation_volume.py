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
        channels = ops.shape(left)[-1]
        scale = 1.0 if self.normalize else 1.0 / ops.cast(channels, self.compute_dtype)
        width = ops.shape(right)[2]
        d_max = self.max_disparity
        # Padding the right view on the left by d_max lets each shift be a slice.
        padded = ops.pad(right, [[0, 0], [0, 0], [d_max, 0], [0, 0]])
        scores = []
        for d in range(d_max + 1):
            shifted = ops.slice(padded, [0, 0, d_max - d, 0],
                                [ops.shape(right)[0], ops.shape(right)[1], width, channels])
            scores.append(ops.sum(left * shifted, axis=-1) * scale)
        volume = ops.stack(scores, axis=-1)
        # Columns x < d have no partner in the right view: lowest score.
        cols = ops.arange(width)[:, None]
        disps = ops.arange(d_max + 1)[None, :]
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
