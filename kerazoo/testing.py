"""A public test helper for Keras layers: kerazoo's own, and yours.

`check_layer` runs the checks every serializable Keras layer should pass,
written against Keras's public API only (no `keras.src`), so it works for
any layer registered with `keras.saving.register_keras_serializable`:

>>> import keras
>>> from kerazoo.testing import check_layer
>>> report = check_layer(keras.layers.Dense, {"units": 3}, input_shape=(2, 4),
...                      expected_output_shape=(2, 3),
...                      expected_num_trainable_weights=2)
>>> sorted(report)
['config', 'eager', 'mixed_bfloat16', 'mixed_float16', 'saving', 'serialize',
 'symbolic', 'training', 'weights']
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile

import keras
import numpy as np


def _flat(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _is_shape(value):
    return isinstance(value, (list, tuple)) and all(d is None or isinstance(d, int) for d in value)


def _shapes(value):
    """A shape or a list of shapes, as a list of tuples."""
    return [tuple(value)] if _is_shape(value) else [tuple(s) for s in value]


def _config_json(config):
    return json.dumps(config, sort_keys=True, default=str)


def _make_inputs(input_shape, input_data, seed):
    if input_data is not None:
        data = [np.asarray(d) for d in _flat(input_data)]
        multi = isinstance(input_data, (list, tuple))
    else:
        rng = np.random.default_rng(seed)
        shapes = _shapes(input_shape)
        data = [
            rng.standard_normal([2 if d is None else d for d in s]).astype("float32")
            for s in shapes
        ]
        multi = not _is_shape(input_shape)
    return data, multi


def _assert_shapes(actual, expected, what, symbolic=False):
    actual = [tuple(s) for s in actual]
    expected = _shapes(expected)
    if symbolic:  # batch size is unknown symbolically
        expected = [(None,) + s[1:] for s in expected]
        actual = [(None,) + s[1:] for s in actual]
    if actual != expected:
        raise AssertionError(f"{what}: output shapes {actual} != expected {expected}")


def check_layer(
    layer_cls,
    init_kwargs=None,
    input_shape=None,
    input_data=None,
    expected_output_shape=None,
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=None,
    expected_num_params=None,
    run_training=True,
    mixed_precision_policies=("mixed_float16", "mixed_bfloat16"),
    mixed_precision_tolerance=0.05,
    run_saving=True,
    rtol=1e-5,
    atol=1e-5,
    seed=0,
    safe_mode=True,
):
    """Runs the standard battery of checks on a Keras layer class.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments: a dict, or a zero-argument callable
            returning one (use a callable when the arguments hold layers, so
            each check gets fresh ones, e.g. under a mixed precision policy).
        input_shape: full input shape with batch size, or a list of them for
            a multi-input layer. Random normal data of that shape is used
            (a `None` batch size becomes 2).
        input_data: arrays to use instead of random data (one, or a list).
        expected_output_shape: full output shape(s) of the eager call.
        expected_num_trainable_weights: the trainable weight count after
            building, if given.
        expected_num_non_trainable_weights: the non-trainable count, if given.
        expected_num_params: the parameter count, if given.
        run_training: fit one step with SGD on an MSE loss and check that
            EVERY trainable weight moved (a weight that never reaches the
            output gets no gradient, and fails).
        mixed_precision_policies: policies under which variables must stay
            float32, outputs come in the policy's compute dtype, are finite,
            and match the float32 outputs of the same weights.
        mixed_precision_tolerance: how close: the largest absolute
            difference may be this fraction of the float32 output's largest
            magnitude (at least 1). float16 and bfloat16 carry about 3 and 2
            significant digits.
        run_saving: save a functional model around the layer to `.keras`,
            reload it with `safe_mode` (True) and no `custom_objects`, and
            compare outputs.
        rtol, atol: tolerances of the output comparisons.
        seed: seed of the random inputs and targets.
        safe_mode: deserialize and reload in Keras's safe mode (False only
            for layers that load external code, such as `HubLayer`).

    Returns:
        A dict naming each check that ran (value: a short detail).

    Raises:
        AssertionError: on the first check that fails, naming its step
            (`check_config_round_trip`, `check_serialization`,
            `check_symbolic_call`, `check_weight_counts`, `check_eager_call`,
            `check_training_step`, `check_precision`, `check_saving`, each
            usable alone).
    """
    if input_shape is None and input_data is None:
        raise ValueError("check_layer needs `input_shape` or `input_data`")
    # Over 80 lines only for its docstring: each check is a function below.
    kwargs = init_kwargs if callable(init_kwargs) else (lambda: dict(init_kwargs or {}))
    data, multi = _make_inputs(input_shape, input_data, seed)
    x = data if multi else data[0]
    report = {}
    keras.utils.set_random_seed(seed)
    layer = layer_cls(**kwargs())
    with _step("config round trip"):
        report["config"] = check_config_round_trip(layer)
    with _step("serialization"):
        report["serialize"] = check_serialization(layer, safe_mode)
    with _step("symbolic call"):
        inputs, outputs, report["symbolic"] = check_symbolic_call(
            layer, data, multi, expected_output_shape
        )
    with _step("weights"):
        report["weights"] = check_weight_counts(
            layer,
            trainable=expected_num_trainable_weights,
            non_trainable=expected_num_non_trainable_weights,
            params=expected_num_params,
        )
    with _step("eager call"):
        eager_shapes, report["eager"] = check_eager_call(layer, x, expected_output_shape)
    model = keras.Model(inputs if multi else inputs[0], outputs)
    if run_training and layer.trainable_weights:
        with _step("training step"):
            report["training"] = check_training_step(layer, model, x, eager_shapes, seed)
    reference = [
        keras.ops.convert_to_numpy(o).astype("float32") for o in _flat(layer(x, training=False))
    ]
    for policy in mixed_precision_policies:
        with _step(policy):
            report[policy] = check_precision(
                layer_cls, kwargs, layer, x, reference, policy, mixed_precision_tolerance
            )
    if run_saving:
        with _step("save and reload"):
            report["saving"] = check_saving(model, x, safe_mode, rtol, atol)
    return report


@contextlib.contextmanager
def _step(name):
    """Names the step of `check_layer` that failed, before its message."""
    try:
        yield
    except AssertionError as e:
        raise AssertionError(f"check_layer step {name!r} failed: {e}") from None


def check_config_round_trip(layer):
    """`get_config` -> `from_config` -> `get_config` gives the same config."""
    config = layer.get_config()
    clone = type(layer).from_config(copy.deepcopy(config))
    if _config_json(clone.get_config()) != _config_json(config):
        raise AssertionError(
            f"config round trip changed the config:\n{_config_json(config)}\n"
            f"{_config_json(clone.get_config())}"
        )
    return "get_config -> from_config -> get_config equal"


def check_serialization(layer, safe_mode=True):
    """Through the registry, as saving does: JSON-serializable, and
    deserialized (without custom_objects) to an equal layer of its class."""
    serialized = keras.saving.serialize_keras_object(layer)
    json.dumps(serialized)  # must be JSON-serializable
    revived = keras.saving.deserialize_keras_object(serialized, safe_mode=safe_mode)
    config = _config_json(layer.get_config())
    if type(revived) is not type(layer) or _config_json(revived.get_config()) != config:
        raise AssertionError("serialize/deserialize did not give back an equal layer")
    return serialized.get("registered_name", "")


def check_symbolic_call(layer, data, multi, expected_output_shape=None):
    """Calls `layer` on `keras.Input`s shaped like `data`; its output shapes
    must be what `compute_output_shape` says (and `expected_output_shape`).
    Returns `(inputs, outputs, report line)`."""
    inputs = [keras.Input(shape=d.shape[1:], dtype=str(d.dtype)) for d in data]
    outputs = layer(inputs if multi else inputs[0])
    out_shapes = [tuple(o.shape) for o in _flat(outputs)]
    computed = layer.compute_output_shape(
        [tuple(i.shape) for i in inputs] if multi else tuple(inputs[0].shape)
    )
    computed = _shapes(computed)
    if [(None,) + c[1:] for c in computed] != [(None,) + s[1:] for s in out_shapes]:
        raise AssertionError(f"compute_output_shape {computed} != symbolic {out_shapes}")
    if expected_output_shape is not None:
        _assert_shapes(out_shapes, expected_output_shape, "symbolic call", symbolic=True)
    return inputs, outputs, str(out_shapes)


def check_weight_counts(layer, trainable=None, non_trainable=None, params=None):
    """The built layer's weight counts against those given (None: any)."""
    counts = {
        "trainable": (len(layer.trainable_weights), trainable),
        "non_trainable": (len(layer.non_trainable_weights), non_trainable),
        "params": (layer.count_params(), params),
    }
    for what, (got, want) in counts.items():
        if want is not None and got != want:
            raise AssertionError(f"number of {what} weights: {got} != expected {want}")
    return {k: v[0] for k, v in counts.items()}


def check_eager_call(layer, x, expected_output_shape=None):
    """Calls `layer` on real arrays. Returns `(output shapes, report line)`."""
    eager_shapes = [tuple(o.shape) for o in _flat(layer(x))]
    if expected_output_shape is not None:
        _assert_shapes(eager_shapes, expected_output_shape, "eager call")
    return eager_shapes, str(eager_shapes)


def check_training_step(layer, model, x, output_shapes, seed=0):
    """One SGD step of `model` (built around `layer`) on an MSE loss: the
    loss is finite and EVERY trainable weight of `layer` moves (a weight
    that never reaches the output gets no gradient)."""
    rng = np.random.default_rng(seed + 1)
    targets = [rng.standard_normal(s).astype("float32") for s in output_shapes]
    before = [keras.ops.convert_to_numpy(w).copy() for w in layer.trainable_weights]
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse")
    history = model.fit(
        x,
        targets if len(targets) > 1 else targets[0],
        epochs=1,
        batch_size=len(_flat(x)[0]),
        verbose=0,
    )
    loss = history.history["loss"][-1]
    if not np.isfinite(loss):
        raise AssertionError(f"training step gave a non-finite loss: {loss}")
    after = [keras.ops.convert_to_numpy(w) for w in layer.trainable_weights]
    still = [
        w.path for w, a, b in zip(layer.trainable_weights, after, before) if np.array_equal(a, b)
    ]
    if still:
        raise AssertionError(
            f"one training step left {len(still)} of {len(after)} trainable weights "
            f"unchanged (no gradient reaches them): {still[:5]}"
        )
    return f"loss {loss:.4g}, all {len(after)} trainable weights moved"


def check_precision(layer_cls, kwargs, layer, x, reference, policy, tolerance=0.05):
    """A fresh layer under the dtype `policy`, with `layer`'s weights:
    float variables stay float32, outputs come in the policy's compute
    dtype, are finite, and are within `tolerance` (of the float32 output's
    largest magnitude, at least 1) of the float32 `reference`."""
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy(policy)
        mp_layer = layer_cls(**kwargs())
        mp_layer(x)  # builds it
        mp_layer.set_weights(layer.get_weights())
        mp_out = _flat(mp_layer(x, training=False))
    finally:
        keras.config.set_dtype_policy(previous)
    # Float variables stay float32; integer state (counters) keeps its dtype.
    bad = [
        w.path
        for w in mp_layer.weights
        if keras.backend.is_float_dtype(w.dtype) and w.dtype != "float32"
    ]
    if bad:
        raise AssertionError(f"{policy}: non-float32 variables {bad[:3]}")
    compute = keras.DTypePolicy(policy).compute_dtype
    dtypes = {keras.backend.standardize_dtype(o.dtype) for o in mp_out}
    if dtypes != {compute}:
        raise AssertionError(f"{policy}: output dtypes {dtypes} != {compute}")
    worst = 0.0
    for got, want in zip(mp_out, reference):
        got = keras.ops.convert_to_numpy(keras.ops.cast(got, "float32"))
        if not np.isfinite(got).all():
            raise AssertionError(
                f"{policy}: outputs are not finite ({int((~np.isfinite(got)).sum())} values)"
            )
        scale = max(1.0, float(np.abs(want).max(initial=0)))
        worst = max(worst, float(np.abs(got - want).max(initial=0)) / scale)
    if worst > tolerance:
        raise AssertionError(
            f"{policy}: outputs differ from float32 by {worst:.3g} of their scale "
            f"(tolerance {tolerance})"
        )
    return f"{compute}, within {worst:.2g} of float32"


def check_saving(model, x, safe_mode=True, rtol=1e-5, atol=1e-5):
    """`.keras` save and reload (registered classes only, in safe mode unless
    the layer loads external code): the same outputs."""
    expected = [keras.ops.convert_to_numpy(o) for o in _flat(model(x, training=False))]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path, safe_mode=safe_mode)
    got = [keras.ops.convert_to_numpy(o) for o in _flat(reloaded(x, training=False))]
    for e, g in zip(expected, got):
        np.testing.assert_allclose(
            g, e, rtol=rtol, atol=atol, err_msg="outputs differ after .keras reload"
        )
    return "equal outputs after reload"
