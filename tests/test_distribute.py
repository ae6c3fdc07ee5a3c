"""Data-parallel training of a model made of kerazoo layers on 2 simulated CPU
devices (MirroredStrategy on TensorFlow, keras.distribution.DataParallel on
JAX): same outputs as on one device, and after a save and reload."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import pytest

BACKEND = keras.backend.backend()
STRATEGY = {"tensorflow": "mirrored", "jax": "data-parallel"}.get(BACKEND)
pytestmark = pytest.mark.skipif(STRATEGY is None, reason=f"no strategy for {BACKEND}")

SCRIPT = textwrap.dedent("""
    import json, os, sys, tempfile
    import numpy as np
    from kerazoo import distribute
    if os.environ["KERAS_BACKEND"] == "tensorflow":
        distribute.configure_cpu_devices(2)
    import keras
    from kerazoo.layers import InceptionBlock, ResidualBlock, SiameseEncoder

    def build():
        # No batch norm: its statistics are per replica under MirroredStrategy
        # (use BatchNormalization(synchronized=True) there), so they would differ.
        a, b = keras.Input((16, 16, 3)), keras.Input((16, 16, 3))
        e_in = keras.Input((16, 16, 3))
        x = InceptionBlock(4, strides=2)(e_in)
        x = ResidualBlock(8, strides=2)(x)
        encoder = keras.Model(e_in, keras.layers.GlobalAveragePooling2D()(x))
        out = SiameseEncoder(encoder, merge="abs_diff", head=keras.layers.Dense(1))([a, b])
        model = keras.Model([a, b], out)
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss="mse")
        return model

    rng = np.random.default_rng(0)
    x = [rng.standard_normal((32, 16, 16, 3)).astype("float32") for _ in range(2)]
    y = rng.standard_normal((32, 1)).astype("float32")
    out, result = {}, {}
    for name in ("none", sys.argv[1]):
        keras.utils.set_random_seed(1)
        with distribute.scope(name) as strategy:
            model = build()
            model.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False)
        result[f"replicas_{name}"] = distribute.replicas(strategy)
        out[name] = model.predict(x, verbose=0)
    path = os.path.join(tempfile.mkdtemp(), "m.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path).predict(x, verbose=0)
    result["single_vs_distributed"] = float(np.abs(out["none"] - out[sys.argv[1]]).max())
    result["distributed_vs_reloaded"] = float(np.abs(reloaded - out[sys.argv[1]]).max())
    print(json.dumps(result))
""")


def _env():
    env = dict(os.environ, KERAS_BACKEND=BACKEND)
    if BACKEND == "jax":
        env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    return env


def test_two_device_training_matches_one_device_and_reloads():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, STRATEGY],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    numbers = json.loads(result.stdout.strip().splitlines()[-1])
    assert numbers[f"replicas_{STRATEGY}"] == 2 and numbers["replicas_none"] == 1
    assert numbers["single_vs_distributed"] < 1e-4
    assert numbers["distributed_vs_reloaded"] < 1e-5
