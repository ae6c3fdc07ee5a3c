"""ImageNet backbones that carry their own preprocessing and verified weights.

`inception_v3(...)` and `xception(...)` wrap `keras.applications` models: the
returned model takes uint8-range RGB (0-255) and maps it to the [-1, 1] range
the ImageNet weights expect with a `Rescaling` layer inside the model, so a
saved model carries its preprocessing and no caller can forget it. Weights
go through `kerazoo.weights` (search order, hash check, offline error).
"""

from __future__ import annotations

import json

import keras
import numpy as np

from kerazoo import weights as weights_lib
from kerazoo.registry import PretrainedWeights, register

POOLINGS = (None, "avg", "max")
# Both ImageNet releases were trained on RGB scaled to [-1, 1]; the models
# built here do that scaling themselves (`include_preprocessing=True`).
_IMAGENET_PREPROCESSING = "RGB 0-255, scaled to [-1, 1] inside the model"
INCEPTION_V3_WEIGHTS = (
    PretrainedWeights(
        "imagenet",
        top="inception_v3",
        notop="inception_v3_notop",
        preprocessing=_IMAGENET_PREPROCESSING,
    ),
)
XCEPTION_WEIGHTS = (
    PretrainedWeights(
        "imagenet", top="xception", notop="xception_notop", preprocessing=_IMAGENET_PREPROCESSING
    ),
)
AVAILABLE_WEIGHTS = {"inception_v3": INCEPTION_V3_WEIGHTS, "xception": XCEPTION_WEIGHTS}
# The smallest input each architecture accepts (keras.applications' own limit).
MIN_SIZE = {"xception": 71, "inception_v3": 75}


def weights_file(arch, weights="imagenet", include_top=False) -> str:
    """The manifest name of backbone `arch`'s pretrained `weights`, e.g.
    `weights_file("xception")` -> `"xception_notop"`.

    >>> weights_file("inception_v3", include_top=True)
    'inception_v3'
    """
    available = {w.name: w for w in AVAILABLE_WEIGHTS[arch]}
    if weights not in available:
        raise ValueError(
            f"`weights` must be one of {tuple(available)} for {arch}, received: weights={weights!r}"
        )
    return available[weights].file_for(include_top)


def _check_args(arch, weights, include_top, pooling, input_shape, classes):
    if pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be one of {POOLINGS}, received: pooling={pooling!r}")
    names = [w.name for w in AVAILABLE_WEIGHTS[arch]]
    if not (
        weights is None
        or weights in names
        or isinstance(weights, (str, bytes))
        or hasattr(weights, "__fspath__")
    ):
        raise ValueError(
            f"`weights` must be one of {names}, None or a path, received: weights={weights!r}"
        )
    if include_top and weights in names and classes != 1000:
        raise ValueError(
            "ImageNet weights with include_top=True need classes=1000, received: "
            f"classes={classes!r}"
        )
    if input_shape is not None:
        shape = tuple(input_shape)
        small = [d for d in shape[:2] if d is not None and d < MIN_SIZE[arch]]
        if len(shape) != 3 or shape[-1] != 3 or small:
            raise ValueError(
                f"`input_shape` must be (height, width, 3) with sides >= "
                f"{MIN_SIZE[arch]}, received: input_shape={input_shape!r}"
            )
    if include_top and input_shape is None:
        # The classifier's dense layer fixes the spatial size.
        input_shape = (299, 299, 3)
    return input_shape


def _build(
    arch,
    app_fn,
    weights,
    include_top,
    pooling,
    input_shape,
    include_preprocessing,
    classes,
    classifier_activation,
    name,
):
    input_shape = _check_args(arch, weights, include_top, pooling, input_shape, classes)
    shape = tuple(input_shape) if input_shape is not None else (None, None, 3)
    base = app_fn(
        include_top=include_top,
        weights=None,
        input_shape=shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
    )
    if weights is not None:
        named = weights in [w.name for w in AVAILABLE_WEIGHTS[arch]]
        name = weights_file(arch, weights if named else "imagenet", include_top)
        # Resolved (and hashed) once here; a path is the caller's own file,
        # or one they resolved already: only its architecture is checked.
        path = weights_lib.resolve(name) if named else weights
        weights_lib.load_into(base, path, name)
    if not include_preprocessing:
        return base
    inputs = keras.Input(shape, name="image")
    # uint8-range RGB -> [-1, 1], as the ImageNet weights were trained.
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")(inputs)
    return keras.Model(inputs, base(x), name=name)


@register("backbone", weights=INCEPTION_V3_WEIGHTS)
def inception_v3(
    weights="imagenet",
    include_top=False,
    pooling=None,
    input_shape=None,
    include_preprocessing=True,
    classes=1000,
    classifier_activation="softmax",
):
    """InceptionV3 (the chapter's Inception architecture), ImageNet-pretrained.

    Args:
        weights: `"imagenet"` (resolved and verified by `kerazoo.weights`),
            `None` (random), or a path to a weights file of this architecture
            (e.g. what `kerazoo.weights.resolve(weights_file(...))` returned).
        include_top: keep the 1000-class classifier (input then 299x299).
        pooling: `None`, `"avg"` or `"max"` when `include_top=False`.
        input_shape: `(height, width, 3)`, sides >= 75; `None` sizes allowed
            without the top.
        include_preprocessing: take uint8-range RGB and rescale inside the model.
        classes, classifier_activation: of the top, as in keras.applications.

    Returns:
        A `keras.Model`.

    Example:

    >>> import kerazoo
    >>> model = kerazoo.backbones.inception_v3(weights=None, pooling="avg")
    >>> model.output_shape
    (None, 2048)

    Reference:
        Szegedy et al., "Rethinking the Inception Architecture for Computer
        Vision", CVPR 2016 (InceptionV3), after "Going Deeper with
        Convolutions", CVPR 2015 (the Inception module).
    """
    return _build(
        "inception_v3",
        keras.applications.InceptionV3,
        weights,
        include_top,
        pooling,
        input_shape,
        include_preprocessing,
        classes,
        classifier_activation,
        "inception_v3",
    )


@register("backbone", weights=XCEPTION_WEIGHTS)
def xception(
    weights="imagenet",
    include_top=False,
    pooling=None,
    input_shape=None,
    include_preprocessing=True,
    classes=1000,
    classifier_activation="softmax",
):
    """Xception (section 7.140: "an extreme Inception"), ImageNet-pretrained.

    Arguments as `inception_v3`; sides >= 71.

    Example:

    >>> import kerazoo
    >>> model = kerazoo.backbones.xception(weights=None, input_shape=(96, 96, 3))
    >>> model.output_shape
    (None, 3, 3, 2048)

    Reference:
        Chollet, "Xception: Deep Learning with Depthwise Separable
        Convolutions", CVPR 2017.
    """
    return _build(
        "xception",
        keras.applications.Xception,
        weights,
        include_top,
        pooling,
        input_shape,
        include_preprocessing,
        classes,
        classifier_activation,
        "xception",
    )


def decode(predictions, top=5, class_index_path=None):
    """Top-k ImageNet labels of `include_top` predictions.

    The class index is a downloadable file too, resolved like the weights.

    Args:
        predictions: array `(batch, 1000)` of class probabilities.
        top: how many labels per sample.
        class_index_path: optional explicit path to `imagenet_class_index.json`.

    Returns:
        For each sample, a list of `(wordnet_id, label, score)`, best first.
    """
    predictions = np.asarray(predictions)
    if predictions.ndim != 2 or predictions.shape[1] != 1000:
        raise ValueError(
            "`predictions` must have shape (batch, 1000), received: "
            f"predictions.shape={predictions.shape}"
        )
    path = weights_lib.resolve("imagenet_class_index", path=class_index_path)
    with open(path) as f:
        index = json.load(f)
    results = []
    for row in predictions:
        best = np.argsort(row)[::-1][:top]
        results.append([(index[str(i)][0], index[str(i)][1], float(row[i])) for i in best])
    return results
