"""The stereo models of the main demo: ONE Xception stem shared by the left
and the right camera (section 7.160), a correlation cost volume at full
resolution, and a view-similarity score.

The stem is Xception's first layers, up to its stride-2 features, run atrous
(`xception_stem`); its weights come from `demos/train_stereo.py`
(stereo-trained, shipped in weights/), ImageNet's Xception, or anywhere else
with the same layers.
"""

from __future__ import annotations

import keras
import numpy as np

from kerazoo.layers import CorrelationVolume, MergePixelPhases, PixelPhases, StereoXception


def _preprocess():
    # uint8-range RGB -> [-1, 1], as Xception's weights expect.
    return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")


def build_stereo_models(max_disparity_px, stem=None):
    """The demo's two models, sharing one stem (one set of weights).

    Returns `(matching, similarity)`:
    - `matching` (`build_matching_model`): `[left, right]` -> the cosine
      correlation `(batch, h, w, max_disparity_px + 1)` at full resolution.
    - `similarity`: `[left, right]` -> the cosine `(batch, 1)` of the two
      views' globally pooled stem features.
    """
    stem = stem or xception_stem()
    matching = build_matching_model(max_disparity_px, stem=stem)
    left, right = keras.Input((None, None, 3), name="left"), keras.Input((None, None, 3),
                                                                       name="right")
    scale = _preprocess()
    shared = StereoXception(base=stem, output_mode="both", trainable_base=False,
                            name="shared_xception_pooled")
    fl, fr = shared([scale(left), scale(right)])
    pool = keras.layers.GlobalAveragePooling2D(name="pool")
    score = keras.layers.Dot(axes=-1, normalize=True, name="similarity")([pool(fl), pool(fr)])
    return matching, keras.Model([left, right], score, name="kerazoo_stereo_similarity")


# ------------------------------------------------ the stereo-trained stem

STEM_FEATURES = "block2_sepconv2_bn"  # Xception's stride-2 features (level 2)


# Each convolution of the stem and the BatchNormalization after it.
STEM_CONVOLUTIONS = (("block1_conv1", "block1_conv1_bn"), ("block1_conv2", "block1_conv2_bn"),
                     ("block2_sepconv1", "block2_sepconv1_bn"), ("block2_sepconv2", STEM_FEATURES))


def xception_stem(atrous=True, name="xception_stem", dtype=None, batch_norm=True):
    """Xception's first layers, up to its stride-2 features (`block2_sepconv2_bn`).

    The same layers, names and weight shapes as `keras.applications.Xception`
    (so its weights copy over by name). With `atrous=True` (DeepLab's trick)
    the first stride is removed and the later 3x3 kernels are dilated by 2,
    with 'same' padding: the receptive field is unchanged, and feature (y, x)
    belongs to image pixel (y, x), so disparities are matched at full
    resolution, odd ones included. The dilation is done as `PixelPhases`:
    the undilated layers run on the image's 4 pixel phases (exactly the
    dilated result for even sizes; an odd last row or column sees zero
    padding through the later layers). `atrous=False` is Xception's own
    geometry.
    `dtype` is the layers' policy (e.g. `"mixed_bfloat16"`: float32 weights,
    bfloat16 arithmetic). `batch_norm=False` builds the inference form that
    `fold_batch_norm` fills: no BatchNormalization layers, each convolution
    with a bias instead.
    """
    layers = keras.layers
    stride, padding = (1, "same") if atrous else (2, "valid")

    # Xception's convolutions have no bias: the BatchNormalization after
    # each one shifts; folded, a bias does.
    bias = not batch_norm

    def normalized(x, bn_name):
        return layers.BatchNormalization(name=bn_name, dtype=dtype)(x) if batch_norm else x

    inputs = keras.Input((None, None, 3), name="image")
    x = layers.Conv2D(32, 3, strides=stride, padding=padding, use_bias=bias,
                      name="block1_conv1", dtype=dtype)(inputs)
    x = normalized(x, "block1_conv1_bn")
    x = layers.Activation("relu", name="block1_conv1_act", dtype=dtype)(x)
    if atrous:
        # Dilation 2 everywhere below == the plain layers on the 4 pixel
        # phases, split once and merged once: 2-4x faster than dilated
        # convolutions, which every backend splits and merges per layer.
        x = PixelPhases(2, name="atrous_split", dtype=dtype)(x)
    x = layers.Conv2D(64, 3, padding=padding, use_bias=bias, name="block1_conv2",
                      dtype=dtype)(x)
    x = normalized(x, "block1_conv2_bn")
    x = layers.Activation("relu", name="block1_conv2_act", dtype=dtype)(x)
    x = layers.SeparableConv2D(128, 3, padding="same", use_bias=bias,
                               name="block2_sepconv1", dtype=dtype)(x)
    x = normalized(x, "block2_sepconv1_bn")
    x = layers.Activation("relu", name="block2_sepconv2_act", dtype=dtype)(x)
    x = layers.SeparableConv2D(128, 3, padding="same", use_bias=bias,
                               name="block2_sepconv2", dtype=dtype)(x)
    x = normalized(x, STEM_FEATURES)
    if atrous:
        x = MergePixelPhases(2, name="atrous_merge", dtype=dtype)([x, inputs])
    return keras.Model(inputs, x, name=name)


def fold_batch_norm(stem, dtype=None):
    """The stem for inference: each BatchNormalization folded into the
    convolution before it (its scale into the kernel that mixes channels,
    its shift into a bias), built by `xception_stem(batch_norm=False)` in
    the layers' policy `dtype`. The same features to float32 rounding,
    four full-size passes fewer, and in `mixed_bfloat16` the convolutions
    run on bfloat16 end to end (TensorFlow on a CPU with avx512_bf16: the
    stem 2.5x faster than float32, where with the BatchNormalization
    layers it was not faster)."""
    atrous = any(layer.name == "atrous_split" for layer in stem.layers)
    folded = xception_stem(atrous=atrous, name=f"{stem.name}_folded", dtype=dtype,
                           batch_norm=False)
    for conv_name, bn_name in STEM_CONVOLUTIONS:
        bn = stem.get_layer(bn_name)
        gamma, beta, mean, variance = (keras.ops.convert_to_numpy(w) for w in
                                       (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance))
        scale = gamma / np.sqrt(variance + bn.epsilon)
        kernels = stem.get_layer(conv_name).get_weights()
        # The last kernel mixes channels (Conv2D's, or the pointwise one):
        # its output axis is the BatchNormalization's.
        kernels[-1] = kernels[-1] * scale
        folded.get_layer(conv_name).set_weights(kernels + [beta - mean * scale])
    return folded


def copy_xception_weights(stem, xception):
    """Copies `xception`'s weights into the stem's layers of the same name."""
    for layer in stem.layers:
        if layer.weights:
            layer.set_weights(xception.get_layer(layer.name).get_weights())
    return stem


def build_matching_model(max_disparity_px, stem=None, trainable=False, input_shape=None):
    """`[left, right]` (0-255 RGB) -> cosine correlation `(batch, h, w, D + 1)`
    at full resolution: ONE stereo stem shared by both views (`StereoXception`),
    then `CorrelationVolume`. Saves to `.keras`."""
    stem = stem or xception_stem()
    shape = tuple(input_shape) if input_shape else (None, None, 3)
    left, right = keras.Input(shape, name="left"), keras.Input(shape, name="right")
    scale = _preprocess()
    shared = StereoXception(base=stem, output_mode="both", trainable_base=trainable,
                            name="shared_xception")
    fl, fr = shared([scale(left), scale(right)])
    cost = CorrelationVolume(max_disparity_px, name="correlation")([fl, fr])
    return keras.Model([left, right], cost, name="kerazoo_stereo_matching")


def matching_loss(temperature=16.0):
    """MC-CNN-style training of the features (Zbontar & LeCun; Luo et al. 2016):
    a softmax over the disparity range of the correlation, cross-entropy at
    the true disparity (sub-pixel truth shared by its two neighbours).
    `y_true`: `(batch, h, w, 1)` disparity, negative where unknown."""
    from keras import ops

    def loss(y_true, y_pred):
        depth = ops.shape(y_pred)[-1]
        bins = ops.cast(ops.arange(depth), y_pred.dtype)
        truth = ops.cast(y_true, y_pred.dtype)
        target = ops.maximum(0.0, 1.0 - ops.abs(bins - truth))
        valid = ops.cast((truth[..., 0] >= 0) & (truth[..., 0] <= ops.cast(depth - 1,
                                                                          truth.dtype)),
                         y_pred.dtype)
        log_p = ops.log_softmax(ops.cast(y_pred, "float32") * temperature, axis=-1)
        cross = -ops.sum(ops.cast(target, "float32") * log_p, axis=-1)
        return ops.sum(cross * ops.cast(valid, "float32")) / (ops.sum(valid) + 1.0)

    return loss
