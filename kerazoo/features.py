"""Multi-level features of any image backbone, keyed by output stride.

timm's `features_only=True` and kimm's `feature_extractor` turn a classifier
into a model returning its feature maps at several resolutions. kerazoo does
the same for any functional Keras model: its own backbones, every
`keras.applications` model and keras-hub `Backbone`s (which declare
`pyramid_outputs`; keras-hub's Xception does not, and this finds its levels).

The keys follow keras-hub's `pyramid_outputs`: `"P{n}"` is the feature map at
output stride `2 ** n` (`"P3"`: 1/8 of the input's height and width), so a
model built on one works with the other. For each stride the feature is the
output of the *last* named layer at that resolution (the deepest feature
before the network downsamples again), found by tracing the model
symbolically at one input size: no weights are computed or downloaded.

>>> import keras
>>> from kerazoo import features
>>> base = keras.applications.MobileNetV2(weights=None, include_top=False,
...                                        input_shape=(96, 96, 3))
>>> features.pyramid_layers(base)  # stride -> layer
{2: 'block_1_expand_relu', 4: 'block_3_expand_relu', 8: 'block_6_expand_relu',
 16: 'block_13_expand_relu', 32: 'out_relu'}
>>> extractor = features.feature_extractor(base, strides=(8, 32))
>>> {k: tuple(v.shape) for k, v in extractor.output.items()}
{'P3': (None, 12, 12, 192), 'P5': (None, 3, 3, 1280)}
"""

from __future__ import annotations

import math
import re

from kerazoo.errors import ParameterError

# The input size to trace a free-size model at: large, so that "valid"
# padding (Inception: 512 -> 255 -> ... -> 14) barely moves the ratios.
PROBE_SIZE = 512


def stride_key(stride: int) -> str:
    """`8` -> `"P3"` (keras-hub's name for the stride-8 level)."""
    return f"P{int(math.log2(stride))}"


def _auto_named(layer) -> bool:
    # Keras numbers unnamed layers per session ("add_3"): not stable names.
    base = re.sub(r"(?<!^)(?=[A-Z])", "_", type(layer).__name__).lower()
    return re.fullmatch(rf"{re.escape(base)}(_\d+)?", layer.name) is not None


def _check_model(model):
    import keras

    if not isinstance(model, keras.Model) or not hasattr(model, "inputs") or not model.inputs:
        raise ParameterError(
            "model",
            f"must be a functional Keras model (keras.applications, "
            f"keras-hub, kerazoo.backbones), received {model!r}",
        )
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise ParameterError(
            "model",
            "must take one image input (batch, height, width, "
            f"channels), received inputs {model.inputs}",
        )


def pyramid_layers(model, strides=None, probe_size: int = PROBE_SIZE) -> dict:
    """`{stride: layer name}`: the last named layer of `model` at each stride.

    Args:
        model: a functional Keras model taking one image.
        strides: the strides wanted (powers of 2); all the model has if None.
        probe_size: the square input size to trace with, where the model's
            own input size is free. A model built for a fixed size is traced
            at that size: give "valid"-padding networks (Inception) at least
            16 times their deepest stride, or a free size.
    """
    import keras

    _check_model(model)
    image = model.inputs[0]
    height, width = (d if d is not None else probe_size for d in image.shape[1:3])
    candidates = []
    for layer in model.layers:
        # Padding before a strided layer only makes the map bigger; no feature.
        if isinstance(
            layer, (keras.layers.InputLayer, keras.layers.ZeroPadding2D, keras.Model)
        ) or _auto_named(layer):
            continue  # (a nested model's own layers are looked at below)
        try:
            output = layer.output
        except (AttributeError, ValueError):  # a layer called more than once
            continue
        if isinstance(output, keras.KerasTensor) and len(output.shape) == 4:
            candidates.append((layer.name, output))
    found = {}
    specs = []
    if candidates:
        probe = keras.Model(model.inputs, [output for _, output in candidates])
        specs = keras.tree.flatten(
            probe.compute_output_spec(keras.KerasTensor((1, height, width, image.shape[-1])))
        )
    for (name, _), spec in zip(candidates, specs):
        h, w = spec.shape[1:3]
        if not h or not w:
            continue
        ratio = math.log2(((height / h) * (width / w)) ** 0.5)
        level = round(ratio)
        if level >= 1 and abs(ratio - level) < 0.3:
            found[2**level] = name  # later layers overwrite: the deepest wins
    inner = _wrapped_backbone(model)
    if not found and inner is not None:  # kerazoo.backbones: preprocessing, then the model
        return {
            s: f"{inner.name}/{name}"
            for s, name in pyramid_layers(inner, strides, probe_size).items()
        }
    if strides is None:
        return dict(sorted(found.items()))
    strides = _strides(strides)
    missing = [s for s in strides if s not in found]
    if missing:
        raise ParameterError(
            "strides", f"{missing} not found in {model.name!r}; it has strides {sorted(found)}"
        )
    return {s: found[s] for s in strides}


def distinct_strides(value):
    """`value` (one stride or several) as a list of distinct powers of 2, in
    the order given; None if it is not one."""
    values = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    try:
        values = list(values)
    except TypeError:
        return None
    if (
        not values
        or any(
            isinstance(s, bool) or not isinstance(s, int) or s < 2 or s & (s - 1) for s in values
        )
        or len(set(values)) != len(values)
    ):
        return None
    return values


def _strides(value):
    values = distinct_strides(value)
    if values is None:
        raise ParameterError(
            "strides", f"must be distinct powers of 2 (2, 4, 8, ...), received strides={value!r}"
        )
    return sorted(values)


def feature_extractor(model, strides=None, name: str | None = None):
    """A model returning `{"P{n}": features at stride 2**n}` from `model`'s layers.

    It shares `model`'s layers (and weights). A keras-hub `Backbone` with
    `pyramid_outputs` is taken at its word; any other model is traced
    (`pyramid_layers`).
    """
    import keras

    _check_model(model)
    declared = getattr(model, "pyramid_outputs", None)
    if declared:
        available = {2 ** int(key[1:]): tensor for key, tensor in declared.items()}
        wanted = sorted(available) if strides is None else _strides(strides)
        missing = [s for s in wanted if s not in available]
        if missing:
            raise ParameterError(
                "strides",
                f"{missing} not among {model.name!r}'s pyramid_outputs {sorted(declared)}",
            )
        outputs = {stride_key(s): available[s] for s in wanted}
    else:
        found = pyramid_layers(model, strides)
        if any("/" in layer for layer in found.values()):
            return _through_wrapper(model, strides, name)
        outputs = {stride_key(s): model.get_layer(layer).output for s, layer in found.items()}
    return keras.Model(model.inputs, outputs, name=name or f"{model.name}_features")


def _wrapped_backbone(model):
    """The one image model nested in `model` (kerazoo's backbones are
    input -> preprocessing -> a keras.applications model), or None."""
    import keras

    nested = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.Model)
        and len(getattr(layer, "inputs", None) or []) == 1
        and len(layer.inputs[0].shape) == 4
    ]
    return nested[0] if len(nested) == 1 else None


def _through_wrapper(model, strides, name):
    # The layers before the nested backbone (preprocessing) run as they are,
    # then the nested backbone's own pyramid: every weight stays shared.
    import keras

    inner = _wrapped_backbone(model)
    position = model.layers.index(inner)
    image = keras.Input(batch_shape=model.inputs[0].shape, dtype=model.inputs[0].dtype)
    x = image
    for layer in model.layers[1:position]:
        x = layer(x)
    outputs = feature_extractor(inner, strides)(x)
    return keras.Model(image, outputs, name=name or f"{model.name}_features")


__all__ = ["distinct_strides", "feature_extractor", "pyramid_layers", "stride_key"]
