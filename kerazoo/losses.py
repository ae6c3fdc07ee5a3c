"""Losses for shared-weight (siamese) models.

`SiameseEncoder(merge="euclidean")` outputs the distance between the two
encodings; `ContrastiveLoss` trains it directly (no sigmoid head to get
wrong). `TripletLoss` trains an encoder on (anchor, positive, negative)
triples. `StereoMatchingLoss` trains a stereo stem shared by two cameras on
its correlation volume. All are registered Keras losses: a model compiled
with them saves and loads with `safe_mode=True`.
"""

from __future__ import annotations

import keras
from keras import ops

from kerazoo.errors import ParameterError


def _number(name, value, zero_allowed=False):
    """A real number (not a bool), positive or, with `zero_allowed`, >= 0;
    NaN fails both comparisons."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not (value >= 0 if zero_allowed else value > 0):
        wording = "a number >= 0" if zero_allowed else "a positive number"
        raise ParameterError(name, f"must be {wording}, received {name}={value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="kerazoo")
class ContrastiveLoss(keras.losses.Loss):
    """Contrastive loss on a predicted distance (Hadsell, Chopra & LeCun).

    A matching pair (`y_true` = 1) is pulled together: `d ** 2`. A
    non-matching pair (`y_true` = 0) is pushed apart until the margin:
    `max(margin - d, 0) ** 2`. The labels are the same as for a sigmoid
    head ("1 = same"), so a dataset serves both.

    Args:
        margin: distance beyond which a non-matching pair costs nothing.
        **kwargs: `keras.losses.Loss` arguments (`reduction`, `name`, `dtype`).

    Input shape:
        `y_true`: `(batch, 1)` labels in {0, 1}; `y_pred`: `(batch, 1)`
        non-negative distances, e.g. `SiameseEncoder(merge="euclidean")`.

    Output shape:
        A scalar (the mean over the batch, by default).

    Example:

    >>> import numpy as np
    >>> loss = ContrastiveLoss(margin=1.0)
    >>> y_true = np.array([[1.0], [0.0], [0.0]])
    >>> distance = np.array([[0.5], [0.25], [2.0]])
    >>> round(float(loss(y_true, distance)), 4)  # (0.25 + 0.5625 + 0) / 3
    0.2708

    Reference:
        Hadsell, Chopra & LeCun, "Dimensionality Reduction by Learning an
        Invariant Mapping", CVPR 2006.
    """

    def __init__(self, margin=1.0, name="contrastive_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = _number("margin", margin)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, y_pred.dtype)
        pull = ops.square(y_pred)
        push = ops.square(ops.maximum(self.margin - y_pred, 0.0))
        return ops.mean(y_true * pull + (1.0 - y_true) * push, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin})
        return config


@keras.saving.register_keras_serializable(package="kerazoo")
class TripletLoss(keras.losses.Loss):
    """Triplet loss: the anchor nearer its positive than its negative by a margin.

    `max(|a - p|^2 - |a - n|^2 + margin, 0)` with squared Euclidean
    distances (FaceNet). `y_pred` is the three embeddings of one shared
    encoder joined on the last axis (`keras.layers.Concatenate()([a, p, n])`
    keeps the model free of `Lambda` layers); `y_true` is ignored (pass
    zeros).

    Args:
        margin: how much nearer the positive must be.
        **kwargs: `keras.losses.Loss` arguments (`reduction`, `name`, `dtype`).

    Input shape:
        `y_pred`: `(batch, 3 * d)`, anchor, positive and negative embeddings
        of size `d`; `y_true`: anything of batch size `batch`.

    Output shape:
        A scalar (the mean over the batch, by default).

    Example:

    >>> import numpy as np
    >>> anchor, positive, negative = [[0.0, 0.0]], [[0.0, 1.0]], [[2.0, 0.0]]
    >>> y_pred = np.concatenate([anchor, positive, negative], axis=-1)
    >>> float(TripletLoss(margin=1.0)(np.zeros((1, 1)), y_pred))  # max(1 - 4 + 1, 0)
    0.0
    >>> float(TripletLoss(margin=4.0)(np.zeros((1, 1)), y_pred))  # 1 - 4 + 4
    1.0

    Reference:
        Schroff, Kalenichenko & Philbin, "FaceNet: A Unified Embedding for
        Face Recognition and Clustering", CVPR 2015.
    """

    def __init__(self, margin=0.2, name="triplet_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = _number("margin", margin)

    def call(self, y_true, y_pred):
        y_pred = ops.convert_to_tensor(y_pred)
        anchor, positive, negative = ops.split(y_pred, 3, axis=-1)
        to_positive = ops.sum(ops.square(anchor - positive), axis=-1)
        to_negative = ops.sum(ops.square(anchor - negative), axis=-1)
        return ops.maximum(to_positive - to_negative + self.margin, 0.0)

    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin})
        return config


@keras.saving.register_keras_serializable(package="kerazoo")
class StereoMatchingLoss(keras.losses.Loss):
    """Cross-entropy of a correlation volume's softmax at the true disparity.

    The correlation of the two views' features at every disparity
    (`CorrelationVolume`), scaled by `temperature`, goes through a softmax
    over the disparities; a sub-pixel truth is shared by its two neighbouring
    bins. Pixels whose truth is unknown (negative) or beyond the range count
    nothing; the sum over the batch is divided by the number of known pixels
    (plus one), so every pixel weighs the same whatever its image.

    With `edge_weight`, a pixel whose 3x3 neighbourhood of truth spans more
    than 1 px of disparity (a depth edge, or the border of an unknown,
    occluded region) weighs `1 + edge_weight`: these are the pixels where
    the right match has close, wrong rivals, and they are few in a scene.

    Args:
        temperature: the scale of the correlations before the softmax.
        edge_weight: the extra weight of pixels at depth edges (0: none).
        **kwargs: `keras.losses.Loss` arguments (`name`, `dtype`); the
            reduction is a sum (each image's term is already normalized).

    Input shape:
        `y_true`: `(batch, h, w, 1)` disparities, negative where unknown;
        `y_pred`: `(batch, h, w, D + 1)` correlations.

    Output shape:
        A scalar.

    Example:

    >>> import numpy as np
    >>> scores = np.zeros((1, 1, 2, 3), "float32")
    >>> scores[0, 0, :, 1] = 1.0  # both pixels favour disparity 1
    >>> truth = np.array([[[[1.0], [-1.0]]]])  # the second pixel is unknown
    >>> loss = StereoMatchingLoss(temperature=1.0)
    >>> round(float(loss(truth, scores)), 4)  # -log(e / (e + 2)) / (1 + 1)
    0.2757

    Reference:
        Zbontar & LeCun, "Stereo Matching by Training a Convolutional Neural
        Network to Compare Image Patches", JMLR 2016; Luo et al., "Efficient
        Deep Learning for Stereo Matching", CVPR 2016.
    """

    def __init__(self, temperature=16.0, edge_weight=0.0, name="stereo_matching_loss", **kwargs):
        kwargs.setdefault("reduction", "sum")
        super().__init__(name=name, **kwargs)
        self.temperature = _number("temperature", temperature)
        self.edge_weight = _number("edge_weight", edge_weight, zero_allowed=True)

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        depth = ops.shape(y_pred)[-1]
        bins = ops.cast(ops.arange(depth), "float32")
        truth = ops.cast(y_true, "float32")
        target = ops.maximum(0.0, 1.0 - ops.abs(bins - truth))
        known = (truth[..., 0] >= 0) & (truth[..., 0] <= ops.cast(depth - 1, "float32"))
        valid = ops.cast(known, "float32")
        if self.edge_weight:
            pool = dict(pool_size=3, strides=1, padding="same", data_format="channels_last")
            span = ops.max_pool(truth, **pool) + ops.max_pool(-truth, **pool)
            valid = valid * (1.0 + self.edge_weight * ops.cast(span[..., 0] > 1.0, "float32"))
        log_p = ops.log_softmax(y_pred * self.temperature, axis=-1)
        cross = -ops.sum(target * log_p, axis=-1)
        per_image = ops.sum(ops.reshape(cross * valid, (ops.shape(cross)[0], -1)), axis=-1)
        return per_image / (ops.sum(valid) + 1.0)

    def get_config(self):
        config = super().get_config()
        config.update({"temperature": self.temperature, "edge_weight": self.edge_weight})
        return config


__all__ = ["ContrastiveLoss", "StereoMatchingLoss", "TripletLoss"]
