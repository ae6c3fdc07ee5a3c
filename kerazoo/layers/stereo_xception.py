"""StereoXception: one Xception base shared by two cameras (section 7.160)."""

from __future__ import annotations

import copy
import json

import keras
from keras import layers, ops

from kerazoo.layers import _checks
from kerazoo.layers.two_view import TwoViewLayer
from kerazoo.options import STEREO_OUTPUT_MODES as OUTPUTS
from kerazoo.registry import register

# Xception's output strides; `kerazoo.features` finds the layer of each.
XCEPTION_STRIDES = (2, 4, 8, 16, 32)


def _levels(value):
    from kerazoo import features

    levels = features.distinct_strides(value)
    if levels is None:
        raise ValueError(
            f"`levels` must be one or more distinct output strides (powers of 2, e.g. "
            f"{XCEPTION_STRIDES}), received: levels={value!r}"
        )
    return levels


def _level_layers(base, levels, given):
    from kerazoo import features

    try:
        found = features.pyramid_layers(base, levels)
    except ValueError as e:
        raise ValueError(
            f"`levels` must be strides of the base {base.name!r} "
            f"({str(e).split('; ')[-1]}), received: levels={given!r}"
        ) from None
    return [found[level] for level in levels]


@register("layer")
@keras.saving.register_keras_serializable(package="kerazoo")
class StereoXception(TwoViewLayer):
    """One convolutional base applied to a left and a right image.

    Section 7.160's "models as layers": a stereo rig needs no separate models
    for its two cameras. A single `keras.applications.Xception` base (or any
    Keras model you pass) is called on both views, so its weights learn from
    both at once and the layer holds exactly one base's weights. It extracts;
    to compare two inputs as one score, use `SiameseEncoder` (both are
    `TwoViewLayer`s).

    Args:
        base: optional Keras model used as the shared base. Defaults to
            `keras.applications.Xception(include_top=False)`.
        weights: initial weights of the default Xception base: `None`
            (random), `"imagenet"` (resolved by `kerazoo.weights`), or a path
            to a weights file. They are the starting point only: a saved model
            stores the current values, so the config records `None`.
        input_shape: shape of one view, `(height, width, 3)`; `None` sizes
            are allowed. Used when building the default base.
        levels: output stride(s) of the features, `(2, 4, 8, 16, 32)` for
            Xception; for any base, the deepest layer at each stride
            (`kerazoo.features.pyramid_layers`). One int gives one feature
            map per view; a list gives one per level, in the order listed.
            The default, 32, is the whole base.
        feature_layers: names of the base's layers to output instead (one
            per requested feature map); overrides `levels`.
        output_mode: `"concat"` (the chapter's): the two views' features
            concatenated on the channel axis; `"both"`: the left and the right
            features as two separate outputs. (Called `output` before 0.2;
            configs saved with that key still load.)
        trainable_base: bool. `False` freezes the shared base (transfer
            learning); `True` fine-tunes it on both views.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Input shape:
        A list of two 4D tensors `[left, right]`, each
        `(batch, height, width, 3)`, preprocessed as the base expects
        (Xception: RGB scaled to [-1, 1]).

    Output shape:
        For each level, `(batch, h, w, 2 * c)` with `output_mode="concat"`, or
        two tensors `(batch, h, w, c)` (left, then right) with
        `output_mode="both"`. One level returns a tensor (or a `[left, right]`
        list); several return a flat list, level by level.

    Example:

    >>> import numpy as np, kerazoo
    >>> stereo = kerazoo.layers.StereoXception(input_shape=(96, 128, 3))
    >>> left = right = np.zeros((1, 96, 128, 3), "float32")
    >>> tuple(stereo([left, right]).shape)
    (1, 3, 4, 4096)
    >>> both = kerazoo.layers.StereoXception(levels=4, output_mode="both")
    >>> [tuple(f.shape) for f in both([left, right])]
    [(1, 23, 31, 256), (1, 23, 31, 256)]

    Reference:
        Chollet, "Xception: Deep Learning with Depthwise Separable
        Convolutions", CVPR 2017; lecture notes section 7.160.
    """

    def __init__(
        self,
        base=None,
        weights=None,
        input_shape=None,
        levels=32,
        feature_layers=None,
        output_mode="concat",
        trainable_base=True,
        **kwargs,
    ):
        if "output" in kwargs:  # the 0.1 name, in code and in saved configs
            output_mode = kwargs.pop("output")
        super().__init__(**kwargs)
        self.output_mode = _checks.one_of("output_mode", output_mode, OUTPUTS)
        self.levels = _levels(levels)
        self.trainable_base = bool(trainable_base)
        self.view_shape = None if input_shape is None else tuple(input_shape)
        if self.view_shape is not None and (len(self.view_shape) != 3 or self.view_shape[-1] != 3):
            raise ValueError(
                f"`input_shape` must be (height, width, 3), received: input_shape={input_shape!r}"
            )
        if isinstance(base, dict):  # from a config; deserializing consumes it
            base = keras.saving.deserialize_keras_object(copy.deepcopy(base))
        if base is not None and not isinstance(base, keras.Model):
            raise ValueError(f"`base` must be a Keras model, received: base={base!r}")
        if base is not None and weights is not None:
            raise ValueError(
                "`weights` applies to the default Xception base only; load them "
                f"into your base instead, received: weights={weights!r}"
            )
        self.feature_layers = None if feature_layers is None else list(feature_layers)

        # Xception's own smallest input (keras.applications' limit); a custom
        # base says for itself what it can take.
        self._min_side = 71 if base is None else 1
        if base is None:
            self._base_json = None
            base = _xception_base(weights, self.view_shape)
        else:
            # A JSON string, not a dict: Keras would wrap a dict attribute for tracking.
            self._base_json = json.dumps(keras.saving.serialize_keras_object(base))
        if self.feature_layers is not None:
            names = self.feature_layers
        elif self.levels == [32]:
            names = None  # the whole base, nothing to cut
        else:
            # The deepest layer at each stride, found by kerazoo.features
            # (for Xception: block2_sepconv2_bn, ..., block13_sepconv2_bn).
            names = _level_layers(base, self.levels, levels)
        # Only the layers up to the deepest requested level are kept, so the
        # layer holds exactly the weights it uses (and one copy of them).
        if names is not None:
            known = {layer.name for layer in base.layers}
            missing = [n for n in names if n not in known]
            if missing:
                raise ValueError(
                    f"`feature_layers` must name layers of the base, received: "
                    f"feature_layers={names!r} (not found: {missing})"
                )
            base = keras.Model(
                base.inputs, [base.get_layer(n).output for n in names], name=f"{base.name}_features"
            )
        self.features = base
        self.features.trainable = self.trainable_base
        self.input_spec = [layers.InputSpec(ndim=4), layers.InputSpec(ndim=4)]

    shared_attribute = "features"

    def build(self, input_shape):
        left = _checks.two_views("StereoXception", input_shape)
        channels = self.features.inputs[0].shape[-1]
        if channels is not None and left[-1] is not None and left[-1] != channels:
            raise ValueError(
                f"StereoXception's base takes {channels}-channel views, received "
                f"input_shape={list(input_shape)}"
            )
        small = [d for d in left[1:3] if d is not None and d < self._min_side]
        if small:
            raise ValueError(
                f"StereoXception's Xception base needs views of at least "
                f"{self._min_side}x{self._min_side} pixels, received "
                f"input_shape={list(input_shape)}"
            )
        if not self.features.built:
            self.features.build(left)

    def _per_view(self, outputs):
        return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]

    def call(self, inputs, training=None):
        fl, fr = (self._per_view(f) for f in self.encode_pair(inputs, training=training))
        outputs = []
        for a, b in zip(fl, fr):
            if self.output_mode == "concat":
                outputs.append(ops.concatenate([a, b], axis=-1))
            else:
                outputs.extend([a, b])
        return outputs[0] if len(outputs) == 1 else outputs

    def compute_output_shape(self, input_shape):
        left = _checks.two_views("StereoXception", input_shape)
        shapes = self.features.compute_output_shape(left)
        if not isinstance(shapes[0], (list, tuple)):
            shapes = [shapes]
        outputs = []
        for shape in shapes:
            shape = tuple(shape)
            if self.output_mode == "concat":
                outputs.append(shape[:-1] + (2 * shape[-1],))
            else:
                outputs.extend([shape, shape])
        return outputs[0] if len(outputs) == 1 else outputs

    @classmethod
    def from_config(cls, config):
        # A saved layer's weights are in its variables: a config's `weights`
        # (None in every config kerazoo writes) is never fetched or opened
        # while loading, whatever a crafted file says.
        return cls(**{**config, "weights": None})

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "base": None if self._base_json is None else json.loads(self._base_json),
                # Weights live in the saved variables, not in the config.
                "weights": None,
                "input_shape": None if self.view_shape is None else list(self.view_shape),
                "levels": self.levels[0] if len(self.levels) == 1 else list(self.levels),
                "feature_layers": self.feature_layers,
                "output_mode": self.output_mode,
                "trainable_base": self.trainable_base,
            }
        )
        return config


def _xception_base(weights, input_shape):
    """Xception without its classifier, through the same weights resolution as
    `kerazoo.backbones.xception` (no preprocessing inside: callers scale)."""
    from kerazoo import backbones

    return backbones.xception(weights=weights, input_shape=input_shape, include_preprocessing=False)
