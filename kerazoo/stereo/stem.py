"""The network `StereoMatcher` shares between its two cameras (section
7.160, "models as layers"): Xception's first layers, up to its stride-2
features, run atrous so that every pixel has a feature; the matching model
that correlates the two views' features; loading its weights; and the
policy it runs in. It trains with `kerazoo.losses.StereoMatchingLoss`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kerazoo.errors import ParameterError
from kerazoo.options import STEREO_PRECISIONS, STEREO_QUALITIES
from kerazoo.registry import PretrainedWeights, register
from kerazoo.stereo._checks import is_int

STEREO_WEIGHTS = "stereo_xception_stem"  # the manifest's stereo-trained stem
# The two networks StereoMatcher offers: "fast" is the stem above;
# "accurate" adds a residual block of two more separable convolutions on
# top of it, which widens what each feature sees from 15 to 23 pixels for
# about 1.8x the multiply-adds. Its block starts as the identity (the last
# BatchNormalization's scale is zero), so it trains on from the fast stem.
QUALITIES = STEREO_QUALITIES
STEREO_WEIGHTS_OF = {"fast": STEREO_WEIGHTS, "accurate": "stereo_xception_stem_accurate"}
# Each network's refining blocks, one dilation on the pixel phases (2 image
# pixels per step) for each. The accurate block's 1 was chosen over 2 (4
# image pixels, 31 px seen) by the validation of 500 training steps each
# (benchmarks/results/stereo_training.json, "candidates"). A stem with more
# blocks (`xception_stem(refine_dilations=...)`) is a candidate for training.
REFINE_DILATIONS = {"fast": (), "accurate": (1,)}


def refine_block_name(index):
    """The prefix of refining block `index`'s layers: `refine`, `refine2`, ..."""
    return "refine" if index == 0 else f"refine{index + 1}"


def refine_convolutions(blocks):
    """`(convolution, BatchNormalization)` names of the first `blocks` refining blocks."""
    return tuple(
        (f"{refine_block_name(b)}_sepconv{i}", f"{refine_block_name(b)}_sepconv{i}_bn")
        for b in range(blocks)
        for i in (1, 2)
    )


REFINE_CONVOLUTIONS = refine_convolutions(len(REFINE_DILATIONS["accurate"]))
STEM_FEATURES = "block2_sepconv2_bn"  # Xception's stride-2 features (level 2)
# Each convolution of the stem and the BatchNormalization after it.
STEM_CONVOLUTIONS = (
    ("block1_conv1", "block1_conv1_bn"),
    ("block1_conv2", "block1_conv2_bn"),
    ("block2_sepconv1", "block2_sepconv1_bn"),
    ("block2_sepconv2", STEM_FEATURES),
)
MIN_SIDE = 16  # the smallest side matched: the stem sees 7 px around a pixel
HALO_ROWS = 8  # the stem sees 7 rows up and down: strips overlap by that much
# Features are computed on strips of about this many rows: they bound the
# working memory. Each strip recomputes its halo, so taller strips waste
# less: up to about 128 rows on 0.4 MP they run faster under TensorFlow, JAX
# and ONNX Runtime. torch's convolutions run slower on taller strips, so it
# keeps 64 (benchmarks/results/stereo_strips.json).
STRIP_ROWS = 128
TORCH_STRIP_ROWS = 64
RANDOM_SEED = 1337  # untrained (random) stems are reproducible


def check_quality(quality):
    """Raises the `ParameterError` of a `quality` not in `QUALITIES`."""
    if quality not in QUALITIES:
        raise ParameterError(
            "quality", f"must be one of {', '.join(map(repr, QUALITIES))}, received {quality!r}"
        )


def check_refine_dilations(quality, refine_dilations):
    """`refine_dilations`, or the `quality`'s own when None, as a tuple;
    raises the `ParameterError` of a value that does not fit the quality."""
    check_quality(quality)
    if refine_dilations is None:
        return REFINE_DILATIONS[quality]
    dilations = tuple(refine_dilations) if isinstance(refine_dilations, (list, tuple)) else None
    ok = dilations is not None and all(is_int(d, 1) for d in dilations)
    if not ok or bool(dilations) != (quality == "accurate"):
        needs = "empty for 'fast'" if quality == "fast" else "at least one for 'accurate'"
        raise ParameterError(
            "refine_dilations",
            f"must be a tuple of integers >= 1, {needs}, received {refine_dilations!r}",
        )
    return tuple(int(d) for d in dilations)


def halo_rows(quality="fast", refine_dilations=None):
    """Rows a strip of features needs above and below (even): the radius of
    what one feature of the stem sees, rounded up."""
    dilations = check_refine_dilations(quality, refine_dilations)
    # Each refining 3x3 reaches its dilation in phase pixels, twice as many
    # image pixels, further; a block has two.
    return HALO_ROWS + sum(2 * 2 * d for d in dilations)


def xception_stem(
    atrous=True,
    name="xception_stem",
    dtype=None,
    batch_norm=True,
    quality="fast",
    refine_dilations=None,
):
    """Xception's first layers, up to its stride-2 features (`block2_sepconv2_bn`).

    The same layers, names and weight shapes as `keras.applications.Xception`,
    so its weights copy over by name (`copy_xception_weights`).

    Args:
        atrous: with True (DeepLab's trick) the first stride is removed and
            the later 3x3 kernels are dilated by 2: the receptive field is
            unchanged and feature (y, x) belongs to image pixel (y, x), so
            disparities are matched at full resolution. The dilation runs as
            the plain layers on the image's 4 pixel phases (`PixelPhases`),
            exact for even sizes. False: Xception's own geometry.
        name: the model's name.
        dtype: the layers' dtype policy (e.g. `"mixed_bfloat16"`).
        batch_norm: False builds the inference form that `fold_batch_norm`
            fills: each convolution with a bias, no BatchNormalization.
        quality: `"fast"`, or `"accurate"`: the same layers, then a residual
            block of two `SeparableConv2D(128)` (`refine_*`, dilated as the
            layers before them), which starts as the identity.
        refine_dilations: the accurate stem's refining blocks, one dilation
            on the pixel phases each; None: `REFINE_DILATIONS[quality]`.
            Blocks after the first are named `refine2_*`, `refine3_*`, ...

    Returns:
        A `keras.Model` from `(batch, h, w, 3)` images in [-1, 1] to
        `(batch, h, w, 128)` features (`(h / 2, w / 2)` when not atrous).

    Reference:
        Chollet, "Xception: Deep Learning with Depthwise Separable
        Convolutions", CVPR 2017.
    """
    import keras

    from kerazoo.layers import MergePixelPhases, PixelPhases

    layers = keras.layers
    stride, padding = (1, "same") if atrous else (2, "valid")
    bias = not batch_norm  # folded, each BatchNormalization's shift is a bias

    def normalized(x, bn_name):
        return layers.BatchNormalization(name=bn_name, dtype=dtype)(x) if batch_norm else x

    inputs = keras.Input((None, None, 3), name="image")
    x = layers.Conv2D(
        32, 3, strides=stride, padding=padding, use_bias=bias, name="block1_conv1", dtype=dtype
    )(inputs)
    x = normalized(x, "block1_conv1_bn")
    x = layers.Activation("relu", name="block1_conv1_act", dtype=dtype)(x)
    if atrous:
        # Split once and merged once: dilated convolutions split and merge
        # the phases in every layer.
        x = PixelPhases(2, name="atrous_split", dtype=dtype)(x)
    x = layers.Conv2D(64, 3, padding=padding, use_bias=bias, name="block1_conv2", dtype=dtype)(x)
    x = normalized(x, "block1_conv2_bn")
    x = layers.Activation("relu", name="block1_conv2_act", dtype=dtype)(x)
    x = layers.SeparableConv2D(
        128, 3, padding="same", use_bias=bias, name="block2_sepconv1", dtype=dtype
    )(x)
    x = normalized(x, "block2_sepconv1_bn")
    x = layers.Activation("relu", name="block2_sepconv2_act", dtype=dtype)(x)
    x = layers.SeparableConv2D(
        128, 3, padding="same", use_bias=bias, name="block2_sepconv2", dtype=dtype
    )(x)
    x = normalized(x, STEM_FEATURES)
    for block, dilation in enumerate(check_refine_dilations(quality, refine_dilations)):
        # A zero scale on the block's last normalization: the block adds
        # nothing until it has learnt something, so training starts from
        # the features before it.
        residual = x
        convolutions = refine_convolutions(block + 1)[-2:]
        for i, (conv_name, bn_name) in enumerate(convolutions):
            x = layers.Activation("relu", name=f"{conv_name}_act", dtype=dtype)(x)
            x = layers.SeparableConv2D(
                128,
                3,
                padding="same",
                dilation_rate=dilation,  # on the phases, as on Xception's grid
                use_bias=bias,
                name=conv_name,
                dtype=dtype,
            )(x)
            if batch_norm:
                x = layers.BatchNormalization(
                    gamma_initializer="zeros" if i == 1 else "ones", name=bn_name, dtype=dtype
                )(x)
        x = layers.Add(name=f"{refine_block_name(block)}_add", dtype=dtype)([residual, x])
    if atrous:
        x = MergePixelPhases(2, name="atrous_merge", dtype=dtype)([x, inputs])
    return keras.Model(inputs, x, name=name)


def fold_batch_norm(stem, dtype=None):
    """The stem for inference: each BatchNormalization folded into the
    convolution before it (its scale into the kernel that mixes channels,
    its shift into a bias), in the layers' policy `dtype`. The same
    features to float32 rounding, four passes over the image fewer, and in
    `mixed_bfloat16` every convolution runs in bfloat16."""
    import keras

    atrous = any(layer.name == "atrous_split" for layer in stem.layers)
    dilations = refine_dilations_of(stem)
    folded = xception_stem(
        atrous=atrous,
        name=f"{stem.name}_folded",
        dtype=dtype,
        batch_norm=False,
        quality=stem_quality(stem),
        refine_dilations=dilations,
    )
    convolutions = STEM_CONVOLUTIONS + refine_convolutions(len(dilations))
    for conv_name, bn_name in convolutions:
        bn = stem.get_layer(bn_name)
        gamma, beta, mean, variance = (
            keras.ops.convert_to_numpy(w)
            for w in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance)
        )
        scale = gamma / np.sqrt(variance + bn.epsilon)
        kernels = stem.get_layer(conv_name).get_weights()
        # The last kernel mixes channels (Conv2D's, or the pointwise one):
        # its output axis is the BatchNormalization's.
        kernels[-1] = kernels[-1] * scale
        folded.get_layer(conv_name).set_weights(kernels + [beta - mean * scale])
    return folded


def refine_dilations_of(stem):
    """The dilations of `stem`'s refining blocks, in order (`()` when fast)."""
    names = {layer.name for layer in stem.layers}
    dilations = []
    while f"{refine_block_name(len(dilations))}_add" in names:
        conv_name = f"{refine_block_name(len(dilations))}_sepconv1"
        dilations.append(int(stem.get_layer(conv_name).dilation_rate[0]))
    return tuple(dilations)


def stem_quality(stem):
    """`"accurate"` for a stem with refining blocks, else `"fast"`."""
    return "accurate" if refine_dilations_of(stem) else "fast"


def copy_xception_weights(stem, xception):
    """Copies `xception`'s weights (or another stem's) into the stem's layers
    of the same name. Refining blocks the source does not have keep their
    weights: each stays the identity it starts as."""
    source = {layer.name for layer in xception.layers}
    for layer in stem.layers:
        if not layer.weights or (layer.name.startswith("refine") and layer.name not in source):
            continue
        layer.set_weights(xception.get_layer(layer.name).get_weights())
    return stem


def _randomize(stem, seed=RANDOM_SEED):
    """Glorot-uniform kernels from a seeded generator of its own: untrained
    features that are the same in every run, without reseeding the caller's
    global random state."""
    rng = np.random.default_rng(seed)
    for layer in stem.layers:
        weights = layer.get_weights()
        for i, w in enumerate(weights):
            if w.ndim >= 3:  # kernels; biases and BatchNormalization keep theirs
                receptive = int(np.prod(w.shape[:-2]))
                fan_in, fan_out = w.shape[-2] * receptive, w.shape[-1] * receptive
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                weights[i] = rng.uniform(-limit, limit, w.shape).astype(w.dtype)
        layer.set_weights(weights)
    return stem


def stereo_label(quality="fast"):
    """How reports name the shipped stereo weights of `quality`."""
    return "stereo-trained" if quality == "fast" else f"stereo-trained {quality}"


def load_stem(weights="stereo", quality="fast", refine_dilations=None):
    """The atrous stem with trained (or random) weights.

    Args:
        weights: `"stereo"`: the stereo-trained weights that ship with kerazoo
            (sha256-verified); `"imagenet"`: ImageNet Xception's first layers
            (found on this machine or downloaded; an accurate stem's
            refining block stays the identity); `None`: random, seeded; or
            a path: a `.weights.h5` of this stem, or a keras-applications
            Xception `.h5`.
        quality: which network (`QUALITIES`, see `xception_stem`).
        refine_dilations: the accurate stem's refining blocks
            (`xception_stem`); None: the quality's own. With `"stereo"`,
            blocks the shipped network lacks start as the identity.

    Returns:
        `(stem, label)`: the `keras.Model` (BatchNormalization not folded,
        float32) and a label naming the weights for reports.
    """
    from kerazoo import backbones
    from kerazoo import weights as weights_lib

    stem = xception_stem(quality=quality, refine_dilations=refine_dilations)
    if weights is None:
        return _randomize(stem), "random"
    if weights == "stereo":
        path = weights_lib.resolve(STEREO_WEIGHTS_OF[quality], download=False)
        if refine_dilations_of(stem) == REFINE_DILATIONS[quality]:
            weights_lib.load_weights_quietly(stem, path, f"the {quality} stereo stem")
            return stem, stereo_label(quality)
        shipped = xception_stem(quality=quality)
        weights_lib.load_weights_quietly(shipped, path, f"the {quality} stereo stem")
        return copy_xception_weights(stem, shipped), stereo_label(quality)
    if weights == "imagenet":
        path = weights_lib.resolve(backbones.weights_file("xception"), download=True)
        label = "imagenet"
    else:
        path = Path(weights)
        if not path.is_file():
            raise ParameterError(
                "weights", f"{weights}: no such file (use 'stereo', 'imagenet', None or a path)"
            )
        if path.name.endswith(".weights.h5"):
            weights_lib.load_weights_quietly(stem, path, "the stereo stem")
            return stem, str(path)
        label = str(path)
    xception = backbones.xception(weights=path, include_preprocessing=False)
    return copy_xception_weights(stem, xception), label


@register(
    "backbone",
    weights=(
        PretrainedWeights(
            "stereo",
            top=None,
            notop=STEREO_WEIGHTS,
            preprocessing="RGB 0-255 scaled to [-1, 1] (xception_preprocessing)",
        ),
    ),
    pyramid=False,
)
def stereo_xception_stem(weights="stereo", quality="fast"):
    """Xception's first layers run atrous, stereo-trained: the network StereoMatcher shares.

    Args:
        weights: as `load_stem`: `"stereo"` (shipped), `"imagenet"`, None or
            a path.
        quality: `"fast"` or `"accurate"` (`xception_stem`).

    Returns:
        The `keras.Model` from `(batch, h, w, 3)` images in [-1, 1] to
        `(batch, h, w, 128)` features.

    Reference:
        Chollet, "Xception: Deep Learning with Depthwise Separable
        Convolutions", CVPR 2017.
    """
    return load_stem(weights, quality)[0]


def cpu_has_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether this CPU says it computes in bfloat16 (x86's avx512_bf16 or
    amx_bf16 among the flags in `cpuinfo`; False where there is no such file)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    return not {"avx512_bf16", "amx_bf16"}.isdisjoint(text.split())


def check_precision(precision):
    """Raises the `ParameterError` of a `precision` that is not one of
    `STEREO_PRECISIONS`; imports nothing (the ONNX runtime checks it too)."""
    if precision not in STEREO_PRECISIONS:
        raise ParameterError(
            "precision", f"must be one of {', '.join(STEREO_PRECISIONS)}, received {precision!r}"
        )


def feature_policy(precision="auto"):
    """The stem's dtype policy for `precision` (one of `auto`, `float32`,
    `mixed_bfloat16`).

    `auto` is `mixed_bfloat16` under TensorFlow and torch on a CPU with
    bfloat16 instructions, where it is faster at the same accuracy, and
    `float32` elsewhere (JAX is slower in bfloat16): see
    `benchmarks/results/stereo.json`.
    """
    check_precision(precision)
    if precision != "auto":
        return precision
    import keras

    fast = keras.backend.backend() in ("tensorflow", "torch") and cpu_has_bfloat16()
    return "mixed_bfloat16" if fast else "float32"


def xception_preprocessing(name="preprocess"):
    """0-255 RGB -> [-1, 1], as Xception's weights expect."""
    import keras

    return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name=name)


def build_matching_model(max_disparity_px, stem=None, trainable=False, input_shape=None):
    """`[left, right]` (0-255 RGB) -> cosine correlation `(batch, h, w, D + 1)`.

    ONE stem shared by both views (`StereoXception`), then
    `CorrelationVolume` over disparities 0..`max_disparity_px`. Saves to and
    loads from `.keras` with `safe_mode=True`.
    """
    import keras

    from kerazoo.layers import CorrelationVolume, StereoXception

    stem = stem or xception_stem()
    shape = tuple(input_shape) if input_shape else (None, None, 3)
    left, right = keras.Input(shape, name="left"), keras.Input(shape, name="right")
    scale = xception_preprocessing()
    shared = StereoXception(
        base=stem, output_mode="both", trainable_base=trainable, name="shared_xception"
    )
    fl, fr = shared([scale(left), scale(right)])
    cost = CorrelationVolume(max_disparity_px, name="correlation")([fl, fr])
    return keras.Model([left, right], cost, name="kerazoo_stereo_matching")


def strip_rows(height, backend="tensorflow"):
    """Rows per strip of an image `height` rows tall, for the network run by
    `backend` (a Keras backend's name, or "onnx" for ONNX Runtime): about
    `STRIP_ROWS` (`TORCH_STRIP_ROWS` under torch), evened out over the
    height, since a short last strip would start higher and recompute most
    of the one before."""
    about = TORCH_STRIP_ROWS if backend == "torch" else STRIP_ROWS
    return math.ceil(height / math.ceil(height / about) / 2) * 2


def correlate_in_strips(volume_of, left, right, rows=None, halo_rows=HALO_ROWS):
    """The correlation volume of a whole pair, computed in horizontal strips.

    Each strip is computed with `halo_rows` more rows above and below, so
    the features of only one strip are in memory at a time. Every window
    has the same height (the last one starts higher), so a model compiles
    once per frame size, not per strip; the windows are even-sized, which
    keeps the atrous stem's pixel phases exact.

    Args:
        volume_of: `volume_of(left, right)` maps one window of each view to
            its `(rows, w, D + 1)` volume (a Keras matching model's, or ONNX
            Runtime's features correlated).
        left, right: the prepared `(h, w, 3)` views.
        rows: rows per strip; None: `strip_rows(height)`.
        halo_rows: rows the features of a strip need beyond it (even;
            `halo_rows(quality)`).

    Returns:
        float32 `(h, w, D + 1)`.
    """
    height = left.shape[0]
    rows = rows or strip_rows(height)
    window = min(height, rows + 2 * halo_rows)
    volume = None
    for top in range(0, height, rows):
        low = min(max(0, top - halo_rows), height - window)
        strip = volume_of(left[low : low + window], right[low : low + window])
        if volume is None:
            volume = np.empty((height,) + strip.shape[1:], np.float32)
        keep = min(rows, height - top)
        volume[top : top + keep] = strip[top - low : top - low + keep]
    return volume


def keras_volume_of(matching):
    """`correlate_in_strips`'s `volume_of` for a Keras matching model
    (`build_matching_model`)."""

    def volume_of(left, right):
        # predict_on_batch runs the compiled function, not an eager call.
        return np.asarray(matching.predict_on_batch([left[None], right[None]]))[0]

    return volume_of
