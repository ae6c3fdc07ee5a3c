"""Chains of sublayers inside a composite layer (the branches of
`InceptionBlock`, the stack and shortcut of `ResidualBlock`): building them
with their shapes propagated, and applying them with `training` passed to
the layers that use it."""

from __future__ import annotations

from keras import layers


def output_shape(chain, input_shape) -> tuple:
    """The chain's output shape, from each layer's `compute_output_shape`."""
    shape = tuple(input_shape)
    for op in chain:
        shape = tuple(op.compute_output_shape(shape))
    return shape


def build(chain, input_shape) -> tuple:
    """Builds each layer on the shape the one before it outputs; returns the
    chain's output shape."""
    shape = tuple(input_shape)
    for op in chain:
        op.build(shape)
        shape = tuple(op.compute_output_shape(shape))
    return shape


def apply(chain, x, training=None):
    """`x` through the chain; BatchNormalization (and Dropout) hear `training`."""
    for op in chain:
        if isinstance(op, (layers.BatchNormalization, layers.Dropout)):
            x = op(x, training=training)
        else:
            x = op(x)
    return x
