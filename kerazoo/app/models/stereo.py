"""The stereo models of the main demo: ONE Xception base shared by the left
and the right camera (section 7.160), a correlation cost volume, and a
view-similarity score."""

from __future__ import annotations

import keras

from kerazoo import backbones
from kerazoo.layers import CorrelationVolume, StereoXception
from kerazoo.layers.stereo_xception import XCEPTION_LEVELS

# Where stride-2 features sit in the image: Xception's first two 3x3
# convolutions are unpadded, so feature column j is centred on image column
# 2 * j + 3 (likewise rows). Stride 4 adds a 'same' stride-2 pooling.
FEATURE_GEOMETRY = {2: (2, 3.0), 4: (4, 3.0)}


def _preprocess():
    # uint8-range RGB -> [-1, 1], as Xception's ImageNet weights expect.
    return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")


def build_stereo_models(max_disparity_px, weights=None, level=2, aggregation=3):
    """The demo's two models, sharing one Xception base (one set of weights).

    Args:
        max_disparity_px: largest disparity to score, in pixels of the images
            the models are given.
        weights: the shared Xception's weights: `None`, `"imagenet"` or a path.
        level: feature stride used for matching (2 or 4).
        aggregation: side of the box window averaging the cost volume
            (parameter-free; 1 disables it).

    Returns:
        `(matching, similarity)`:
        - `matching`: `[left, right]` (0-255 RGB, any size) to the cost
          volume `(batch, h, w, D)` at stride `level` (see
          `FEATURE_GEOMETRY`): the cosine correlation of the two views'
          features for each disparity, box-averaged. Saves to `.keras`.
        - `similarity`: `[left, right]` to the cosine `(batch, 1)` of the two
          views' globally pooled deepest (stride 32) features. Run it on a
          downscaled copy: the deep layers are the expensive ones.
    """
    if level not in FEATURE_GEOMETRY:
        raise ValueError(f"`level` must be one of {tuple(FEATURE_GEOMETRY)}, "
                         f"received: level={level!r}")
    stride = FEATURE_GEOMETRY[level][0]
    base = backbones.xception(weights=weights, include_preprocessing=False)

    left, right = keras.Input((None, None, 3), name="left"), keras.Input((None, None, 3), name="right")
    scale = _preprocess()
    shared = StereoXception(base=base, feature_layers=[XCEPTION_LEVELS[level]], output_mode="both",
                            trainable_base=False, name="shared_xception")
    fl, fr = shared([scale(left), scale(right)])
    max_disparity_features = -(-max_disparity_px // stride)  # ceil: feature pixels
    cost = CorrelationVolume(max_disparity_features, name="correlation")([fl, fr])
    if aggregation > 1:
        cost = keras.layers.AveragePooling2D(aggregation, strides=1, padding="same",
                                             name="aggregate")(cost)
    matching = keras.Model([left, right], cost, name="kerazoo_stereo_matching")

    left2, right2 = keras.Input((None, None, 3), name="left"), keras.Input((None, None, 3), name="right")
    scale2 = _preprocess()
    deep = StereoXception(base=base, output_mode="both", trainable_base=False, name="shared_xception_deep")
    dl, dr = deep([scale2(left2), scale2(right2)])
    pool = keras.layers.GlobalAveragePooling2D(name="pool")
    score = keras.layers.Dot(axes=-1, normalize=True, name="similarity")([pool(dl), pool(dr)])
    similarity = keras.Model([left2, right2], score, name="kerazoo_stereo_similarity")
    return matching, similarity
