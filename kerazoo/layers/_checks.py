"""Argument checks shared by the layers: one wording for every ValueError."""

from __future__ import annotations


def positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, received: {name}={value!r}")
    return value


def one_of(name: str, value, options) -> object:
    if value not in options:
        raise ValueError(f"`{name}` must be one of {tuple(options)}, received: {name}={value!r}")
    return value


def int_or_n_ints(name: str, value, n: int) -> tuple:
    """An int broadcast to n, or a sequence of exactly n positive ints."""
    received = value
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * n
    try:
        values = tuple(value)
    except TypeError:
        values = ()
    if len(values) != n or not all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values
    ):
        raise ValueError(
            f"`{name}` must be a positive integer or a sequence of {n} positive "
            f"integers, received: {name}={received!r}"
        )
    return values


def activation(name: str, value):
    """A Keras activation function from a name or callable."""
    import keras

    try:
        return keras.activations.get(value)
    except (ValueError, TypeError):
        raise ValueError(
            f"`{name}` must name a Keras activation, received: {name}={value!r}"
        ) from None


def two_inputs(layer: str, input_shape, expected: str = "[left, right] inputs") -> tuple:
    """The two shapes of a layer called on a list of two inputs (the one
    check of that structure every two-input kerazoo layer makes)."""
    if (
        not isinstance(input_shape, (list, tuple))
        or len(input_shape) != 2
        or not all(isinstance(s, (list, tuple)) for s in input_shape)
    ):
        raise ValueError(f"{layer} expects {expected}, received input_shape={input_shape!r}")
    return tuple(tuple(s) for s in input_shape)


def two_views(layer: str, input_shape, rank: int = 4) -> tuple:
    """Checks `[left, right]` input shapes of equal size; returns left's."""
    left, right = two_inputs(layer, input_shape)
    if len(left) != rank or left[1:] != right[1:]:
        raise ValueError(
            f"{layer}'s left and right inputs must be {rank}D and of the same "
            f"size, received {left} and {right}"
        )
    return left
