"""Data-parallel training: one helper, both backends.

- `mirrored`: `tf.distribute.MirroredStrategy` (TensorFlow backend): variables
  mirrored on every local device, each batch split across them.
- `data-parallel`: `keras.distribution.DataParallel` (JAX backend): the same
  idea through Keras's own distribution API.

Build and compile the model inside `scope(name)`; `fit` then runs distributed.
On one CPU machine, more devices can be simulated for testing:
`configure_cpu_devices(2)` before TensorFlow runs anything, or
`XLA_FLAGS=--xla_force_host_platform_device_count=2` before JAX is imported.
"""

from __future__ import annotations

import contextlib

from kerazoo.errors import ParameterError
from kerazoo.options import STRATEGIES


def configure_cpu_devices(count):
    """Splits the CPU into `count` logical TensorFlow devices (call first)."""
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    )


@contextlib.contextmanager
def scope(name):
    """Context in which to build and compile a model for strategy `name`."""
    import keras

    name = name or "none"
    if name not in STRATEGIES:
        raise ParameterError("strategy", f"must be one of {STRATEGIES}, received {name!r}")
    backend = keras.backend.backend()
    if name == "none":
        yield None
        return
    if name == "mirrored":
        if backend != "tensorflow":
            raise ParameterError(
                "strategy",
                "'mirrored' is tf.distribute: it needs KERAS_BACKEND="
                f"tensorflow (this is {backend}; use 'data-parallel' with JAX)",
            )
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(
            devices=[d.name for d in tf.config.list_logical_devices("CPU")]
            if not tf.config.list_logical_devices("GPU")
            else None
        )
        with strategy.scope():
            yield strategy
        return
    if backend != "jax":
        raise ParameterError(
            "strategy",
            "'data-parallel' uses keras.distribution, which runs "
            f"on JAX (this is {backend}; use 'mirrored' with TensorFlow)",
        )
    previous = keras.distribution.distribution()
    distribution = keras.distribution.DataParallel(devices=keras.distribution.list_devices())
    keras.distribution.set_distribution(distribution)
    try:
        yield distribution
    finally:
        keras.distribution.set_distribution(previous)


def replicas(strategy) -> int:
    """How many devices a batch is split across under `strategy`."""
    if strategy is None:
        return 1
    if hasattr(strategy, "num_replicas_in_sync"):
        return strategy.num_replicas_in_sync
    return len(strategy.device_mesh.devices.flatten())
