"""Which Keras backend is fastest for what, with kerazoo's layers.

    python benchmarks/backends.py [--refresh] [--repeats N]   (about 5 minutes, 2 cores)

Each backend runs in its own fresh process (a Keras backend is chosen at
import), on the same workloads with the same shapes: the import itself, the
forward pass (`predict_on_batch`) and one training step (`train_on_batch`)
of an Inception block, a residual block and the chapter's shared LSTM
(`SiameseEncoder`), and the stereo demo's matching features on the shipped
pair. Times are medians of `--repeats` runs after one warm-up (which holds
the compilation); the table gives each backend's time relative to the
fastest in the same run, so the machine's speed cancels out.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import _results

BACKENDS = ("tensorflow", "jax", "torch")

WORKER = r"""
import json, os, sys, time
start = time.perf_counter()
import keras, kerazoo
import numpy as np
imported = time.perf_counter() - start
repeats = int(sys.argv[1])
from kerazoo.layers import InceptionBlock, ResidualBlock, SiameseEncoder

def median_seconds(fn):
    fn()  # warm-up: tracing and compilation
    times = []
    for _ in range(repeats):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return float(np.median(times))

def image_model(layer):
    x_in = keras.Input((32, 32, 64))
    y = keras.layers.GlobalAveragePooling2D()(layer(x_in))
    return keras.Model(x_in, keras.layers.Dense(10)(y))

def lstm_model():
    a, b = keras.Input((20, 16)), keras.Input((20, 16))
    s = SiameseEncoder(keras.layers.LSTM(32), head=keras.layers.Dense(1, activation="sigmoid"))
    return keras.Model([a, b], s([a, b]))

rng = np.random.default_rng(0)
image = rng.standard_normal((32, 32, 32, 64)).astype("float32")
labels = rng.integers(0, 10, (32,))
pair = [rng.standard_normal((32, 20, 16)).astype("float32") for _ in range(2)]
same = rng.integers(0, 2, (32, 1)).astype("float32")
results = {"import s": imported}
for name, build, x, y, loss in [
    ("InceptionBlock", lambda: image_model(InceptionBlock(64)), image, labels,
     "sparse_categorical_crossentropy"),
    ("ResidualBlock", lambda: image_model(ResidualBlock(64)), image, labels,
     "sparse_categorical_crossentropy"),
    ("SiameseEncoder (LSTM)", lstm_model, pair, same, "binary_crossentropy"),
]:
    keras.utils.set_random_seed(0)
    model = build()
    model.compile(optimizer="adam", loss=loss)
    results[f"{name} forward ms"] = 1000 * median_seconds(lambda: model.predict_on_batch(x))
    results[f"{name} train step ms"] = 1000 * median_seconds(lambda: model.train_on_batch(x, y))

from kerazoo._io import read_image_rgb
from kerazoo.stereo.stem import build_matching_model
left = read_image_rgb("demos/data/left.png")[None].astype("float32")
right = read_image_rgb("demos/data/right.png")[None].astype("float32")
matching = build_matching_model(32)
results["stereo features + correlation s (shipped pair)"] = median_seconds(
    lambda: matching.predict_on_batch([left, right]))
print("RESULTS " + json.dumps(results))
"""


def run_backend(backend, repeats):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        cwd=_results.ROOT,
        timeout=1800,
    )
    for line in out.stdout.splitlines():
        if line.startswith("RESULTS "):
            return json.loads(line[len("RESULTS ") :])
    raise RuntimeError(f"{backend} failed:\n{out.stderr[-3000:]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    _results.add_arguments(parser)
    args = parser.parse_args()
    import keras

    results = {}
    for backend in BACKENDS:
        start = time.perf_counter()
        results[backend] = run_backend(backend, args.repeats)
        print(f"{backend}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    rows = list(results[BACKENDS[0]])
    print(
        f"Keras {keras.__version__}, {os.cpu_count()} CPU cores; time relative to the "
        "fastest backend (1.00), absolute time of the fastest in brackets.\n"
    )
    print("| workload | " + " | ".join(BACKENDS) + " | fastest |")
    print("|---|" + "---|" * (len(BACKENDS) + 1))
    table = []
    for row in rows:
        values = {b: results[b][row] for b in BACKENDS}
        best = min(values, key=values.get)
        cells = [f"{values[b] / values[best]:.2f}" for b in BACKENDS]
        print(f"| {row} | " + " | ".join(cells) + f" | {best} ({values[best]:.3g}) |")
        table.append({"workload": row, **values, "fastest": best})
    _results.write(
        "backends",
        {
            "keras": keras.__version__,
            "cpu_count": os.cpu_count(),
            "repeats": args.repeats,
            "rows": table,
        },
        args.refresh,
    )


if __name__ == "__main__":
    main()
