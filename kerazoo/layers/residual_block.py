"""ResidualBlock: a convolution stack added back to its input (section 7.140)."""

from __future__ import annotations

import keras
from keras import layers, ops

from kerazoo.layers import _chain, _checks
from kerazoo.registry import register

_CONV = {1: layers.Conv1D, 2: layers.Conv2D}


@register("layer")
@keras.saving.register_keras_serializable(package="kerazoo")
class ResidualBlock(layers.Layer):
    """A stack of convolutions whose output is added to the block's input.

    The residual connection of section 7.140: `y = convs(x); y = y + x`. When
    the stack changes the channel count or the resolution, the shortcut goes
    through a strided 1x1 projection so the two can still be added.

    Args:
        filters: int or `None`. Output channels; `None` keeps the input's
            channel count (no projection needed, as in the chapter).
        kernel_size: int. Kernel size of every convolution. Defaults to 3.
        num_convs: int. Number of convolutions in the stack. Defaults to 3.
        strides: int. Stride of the first convolution (and of the shortcut
            projection).
        activation: activation of every convolution.
        use_batch_norm: bool. Add batch normalisation to each convolution
            and to the projection.
        preactivation: bool. `False` (the chapter's): convolution,
            [batch norm], activation. `True` (ResNet v2): [batch norm],
            activation, convolution, which keeps the shortcut an identity path.
        rank: 2 for images `(batch, h, w, c)`, 1 for sequences
            `(batch, steps, c)`.
        kernel_initializer: initializer of every kernel.
        kernel_regularizer: optional regularizer of every kernel.
        **kwargs: base layer arguments (`name`, `dtype`, `trainable`).

    Input shape:
        `(batch, height, width, channels)` for `rank=2`,
        `(batch, steps, channels)` for `rank=1`.

    Output shape:
        Same rank; spatial dims divided by `strides` (rounded up); last axis
        `filters` (or the input's channels when `filters=None`).

    Example:

    >>> import numpy as np, kerazoo
    >>> x = np.ones((2, 32, 32, 128), "float32")
    >>> tuple(kerazoo.layers.ResidualBlock()(x).shape)
    (2, 32, 32, 128)
    >>> tuple(kerazoo.layers.ResidualBlock(64, strides=2, use_batch_norm=True)(x).shape)
    (2, 16, 16, 64)
    >>> tuple(kerazoo.layers.ResidualBlock(16, rank=1)(np.ones((2, 50, 8), "float32")).shape)
    (2, 50, 16)

    Reference:
        He et al., "Deep Residual Learning for Image Recognition", CVPR 2016,
        and "Identity Mappings in Deep Residual Networks", ECCV 2016;
        lecture notes section 7.140.
    """

    def __init__(
        self,
        filters=None,
        kernel_size=3,
        num_convs=3,
        strides=1,
        activation="relu",
        use_batch_norm=False,
        preactivation=False,
        rank=2,
        kernel_initializer="he_normal",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = None if filters is None else _checks.positive_int("filters", filters)
        self.kernel_size = _checks.positive_int("kernel_size", kernel_size)
        self.num_convs = _checks.positive_int("num_convs", num_convs)
        self.strides = _checks.positive_int("strides", strides)
        self.rank = _checks.one_of("rank", rank, (1, 2))
        self.activation = _checks.activation("activation", activation)
        self.use_batch_norm = bool(use_batch_norm)
        self.preactivation = bool(preactivation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.input_spec = layers.InputSpec(ndim=self.rank + 2)

    def _layer_kwargs(self, name):
        return {"dtype": self.dtype_policy, "name": name}

    def _conv(self, filters, kernel, strides, name):
        return _CONV[self.rank](
            filters,
            kernel,
            strides=strides,
            padding="same",
            use_bias=not self.use_batch_norm,
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            **self._layer_kwargs(name),
        )

    def build(self, input_shape):
        if len(input_shape) != self.rank + 2 or input_shape[-1] is None:
            raise ValueError(
                f"ResidualBlock(rank={self.rank}) expects a {self.rank + 2}D input "
                f"with known channels, received input_shape={tuple(input_shape)}"
            )
        # Created here, not in __init__ (Keras's convention): their sizes
        # depend on the input's channels (filters=None keeps them, and the
        # projection exists only when they change).
        channels = input_shape[-1]
        filters = self.filters or channels
        # The stack: each step is a list of layers applied in order.
        self.steps = []
        for i in range(self.num_convs):
            name = f"conv{i + 1}"
            conv = self._conv(filters, self.kernel_size, self.strides if i == 0 else 1, name)
            bn = (
                layers.BatchNormalization(**self._layer_kwargs(f"{name}_bn"))
                if self.use_batch_norm
                else None
            )
            act = layers.Activation(self.activation, **self._layer_kwargs(f"{name}_act"))
            order = [bn, act, conv] if self.preactivation else [conv, bn, act]
            self.steps.append([op for op in order if op is not None])
        # Project the shortcut only when a plain add would not line up.
        self.projection = None
        if filters != channels or self.strides != 1:
            self.projection = [self._conv(filters, 1, self.strides, "shortcut")]
            if self.use_batch_norm and not self.preactivation:
                self.projection.append(
                    layers.BatchNormalization(**self._layer_kwargs("shortcut_bn"))
                )
        shape = tuple(input_shape)
        for step in self.steps:
            shape = _chain.build(step, shape)
        _chain.build(self.projection or (), input_shape)
        self.input_spec = layers.InputSpec(ndim=self.rank + 2, axes={-1: channels})

    def call(self, inputs, training=None):
        y = inputs
        for step in self.steps:
            y = _chain.apply(step, y, training)
        shortcut = inputs
        if self.projection is not None:
            shortcut = _chain.apply(self.projection, inputs, training)
        return ops.add(y, shortcut)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        spatial = tuple(None if d is None else -(-d // self.strides) for d in input_shape[1:-1])
        return (input_shape[0],) + spatial + (self.filters or input_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "num_convs": self.num_convs,
                "strides": self.strides,
                "activation": keras.activations.serialize(self.activation),
                "use_batch_norm": self.use_batch_norm,
                "preactivation": self.preactivation,
                "rank": self.rank,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
        return config
