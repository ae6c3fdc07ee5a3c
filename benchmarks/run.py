"""kerazoo's benchmark table: every figure a ratio measured in the same run.

    python benchmarks/run.py [--quick] [--refresh]

1. Overhead of each kerazoo layer against the same graph written by hand with
   the functional API (same weights, outputs checked equal): forward
   (`predict_on_batch`) and one train step (`train_on_batch`), batch 1 and 32.
   Goal: <= 1.03.
2. InceptionBlock forward GFLOP/s against a float32 matmul of the same FLOP
   count on this machine (the practical peak). Goal: >= 0.9.
3. `jit_compile=True` against `False`, per layer (forward, batch 32).
4. The stereo demo against OpenCV StereoSGBM: see benchmarks/stereo.py.
5. Stereo demo scaling: seconds and peak memory against image size and
   maximum disparity (fresh process each, as a user runs it).
6. CLI start-up: `kerazoo --help` against `python -c pass`.

Timings are medians over interleaved repeats (A, B, A, B, ...), so slow
drifts of a noisy machine hit both sides alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import _results  # benchmarks/_results.py: the script's folder is on sys.path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]


def paired(fn_a, fn_b, repeats):
    """Median seconds of fn_a and fn_b, run interleaved after a warm-up."""
    fn_a(), fn_b()
    a, b = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        fn_a()
        a.append(time.perf_counter() - start)
        start = time.perf_counter()
        fn_b()
        b.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


# ----------------------------------------------------- 1. layer overhead


def _hand_inception(x, leaves, filters=32, strides=2):
    from keras import layers

    def conv(t, k, s=1):
        layer = layers.Conv2D(filters, k, strides=s, padding="same", activation="relu")
        leaves.append(layer)
        return layer(t)

    a = conv(x, 1, strides)
    b = conv(conv(x, 1), 3, strides)
    c = conv(layers.AveragePooling2D(3, strides=strides, padding="same")(x), 3)
    d = conv(conv(conv(x, 1), 3), 3, strides)
    return layers.Concatenate()([a, b, c, d])


def _hand_residual(x, leaves):
    from keras import layers

    y = x
    for _ in range(3):
        conv = layers.Conv2D(x.shape[-1], 3, padding="same", activation="relu")
        leaves.append(conv)
        y = conv(y)
    return layers.Add()([y, x])


def cases():
    """(name, input shapes, kerazoo builder, hand-written builder). Builders
    return (output, leaf layers holding weights, in matching order)."""
    import keras

    from kerazoo.layers import InceptionBlock, ResidualBlock, SiameseEncoder

    def inception_kz(i):
        block = InceptionBlock(32)
        out = block(i[0])
        return out, [op for branch in block.branches for op in branch if op.weights]

    def residual_kz(i):
        block = ResidualBlock()
        out = block(i[0])
        return out, [step[0] for step in block.steps]

    def siamese_kz(i):
        lstm, head = keras.layers.LSTM(32), keras.layers.Dense(1, activation="sigmoid")
        return SiameseEncoder(lstm, head=head)(i), [lstm, head]

    def siamese_hand(i):
        lstm, head = keras.layers.LSTM(32), keras.layers.Dense(1, activation="sigmoid")
        return head(keras.layers.Concatenate()([lstm(i[0]), lstm(i[1])])), [lstm, head]

    def hand(fn):
        def build(i):
            leaves = []
            return fn(i[0], leaves), leaves

        return build

    return [
        ("InceptionBlock", [(32, 32, 64)], inception_kz, hand(_hand_inception)),
        ("ResidualBlock", [(32, 32, 64)], residual_kz, hand(_hand_residual)),
        ("SiameseEncoder", [(20, 128), (20, 128)], siamese_kz, siamese_hand),
    ]


def _models(name, shapes, kz, hand):
    import keras

    inputs = [keras.Input(s) for s in shapes]
    out, kz_leaves = kz(inputs)
    kz_model = keras.Model(inputs, out, name=f"{name}_kerazoo")
    inputs2 = [keras.Input(s) for s in shapes]
    out2, hand_leaves = hand(inputs2)
    hand_model = keras.Model(inputs2, out2, name=f"{name}_hand")
    for a, b in zip(kz_leaves, hand_leaves, strict=True):
        b.set_weights(a.get_weights())
    return kz_model, hand_model


def overhead(repeats):
    import keras

    rows = []
    for name, shapes, kz, hand in cases():
        kz_model, hand_model = _models(name, shapes, kz, hand)
        for batch in (1, 32):
            rng = np.random.default_rng(0)
            x = [rng.standard_normal((batch,) + s).astype("float32") for s in shapes]
            x = x if len(x) > 1 else x[0]
            y = np.asarray(kz_model.predict_on_batch(x))
            np.testing.assert_allclose(
                np.asarray(hand_model.predict_on_batch(x)), y, rtol=1e-4, atol=1e-4
            )  # the same graph
            fwd = paired(
                lambda: kz_model.predict_on_batch(x),
                lambda: hand_model.predict_on_batch(x),
                repeats,
            )
            for m in (kz_model, hand_model):
                m.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse")
            target = np.zeros_like(y)
            train = paired(
                lambda: kz_model.train_on_batch(x, target),
                lambda: hand_model.train_on_batch(x, target),
                repeats,
            )
            rows.append(
                {
                    "layer": name,
                    "batch": batch,
                    "forward_ratio": fwd[0] / fwd[1],
                    "train_ratio": train[0] / train[1],
                    "forward_ms": fwd[0] * 1e3,
                    "train_ms": train[0] * 1e3,
                }
            )
    return rows


# ------------------------------------------- 2. InceptionBlock vs matmul


def inception_flops(h, w, c, f, strides=2):
    """Multiply-adds x 2 of InceptionBlock(f, strides) on (h, w, c), 'same'."""
    ho, wo = -(-h // strides), -(-w // strides)
    conv = lambda hh, ww, k, cin: 2 * hh * ww * k * k * cin * f  # noqa: E731
    a = conv(ho, wo, 1, c)
    b = conv(h, w, 1, c) + conv(ho, wo, 3, f)
    c_ = conv(ho, wo, 3, c) + ho * wo * c * 9  # pooling adds
    d = conv(h, w, 1, c) + conv(h, w, 3, f) + conv(ho, wo, 3, f)
    return a + b + c_ + d


def gflops(repeats):
    import keras

    from kerazoo.layers import InceptionBlock

    batch, h, w, c, f = 32, 32, 32, 64, 64
    x_in = keras.Input((h, w, c))
    model = keras.Model(x_in, InceptionBlock(f, strides=2)(x_in))
    x = np.random.default_rng(0).standard_normal((batch, h, w, c)).astype("float32")
    flops = batch * inception_flops(h, w, c, f)
    n = int(round((flops / 2) ** (1 / 3)))
    a = np.random.default_rng(1).standard_normal((n, n)).astype("float32")
    m_in = keras.Input((n,), batch_size=n)
    matmul = keras.Model(m_in, keras.layers.Dense(n, use_bias=False)(m_in))
    matmul.layers[-1].set_weights([a])
    block_s, mm_s = paired(
        lambda: model.predict_on_batch(x), lambda: matmul.predict_on_batch(a), repeats
    )
    block_gflops = flops / block_s / 1e9
    mm_gflops = 2 * n**3 / mm_s / 1e9
    return {
        "block_gflops": block_gflops,
        "matmul_gflops": mm_gflops,
        "ratio": block_gflops / mm_gflops,
        "flops": flops,
        "matmul_n": n,
        "config": f"InceptionBlock({f}, strides=2) on ({batch}, {h}, {w}, {c})",
    }


# ----------------------------------------------------------- 3. XLA


def jit(repeats):
    import keras

    rows = []
    for name, shapes, kz, _hand in cases():
        inputs = [keras.Input(s) for s in shapes]
        out, _ = kz(inputs)
        models = {}
        for flag in (True, False):
            m = keras.Model(inputs, out)
            m.compile(jit_compile=flag)
            models[flag] = m
        x = [np.random.default_rng(0).standard_normal((32,) + s).astype("float32") for s in shapes]
        x = x if len(x) > 1 else x[0]
        on, off = paired(
            lambda: models[True].predict_on_batch(x),
            lambda: models[False].predict_on_batch(x),
            repeats,
        )
        rows.append(
            {
                "layer": name,
                "jit_ms": on * 1e3,
                "no_jit_ms": off * 1e3,
                "jit_speedup": off / on,
                "faster": "jit_compile=True" if on < off else "jit_compile=False",
            }
        )
    return rows


# ------------------------------------------------- 5. stereo scaling


def stereo_scaling(sizes, disparities):
    from PIL import Image

    from kerazoo.app.demos.stereo_data import synthetic_pair

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for megapixels in sizes:
            for max_disp in disparities:
                width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
                height = int(width * 3 / 4)
                # Render at most 1 MP, then enlarge (8-bit, in Pillow): a 100 MP
                # scene would take the generator minutes and gigabytes.
                scale = min(1.0, (1e6 / (width * height)) ** 0.5)
                pair = synthetic_pair(
                    int(height * scale),
                    int(width * scale),
                    seed=7,
                    max_disparity=max(4, int(max_disp * scale)),
                )
                left, right = Path(tmp) / "l.png", Path(tmp) / "r.png"
                for view, path in ((pair.left, left), (pair.right, right)):
                    Image.fromarray(view).resize((width, height), Image.BILINEAR).save(
                        path, compress_level=1
                    )
                code = (
                    "import resource\nfrom kerazoo.app.cli import main\n"
                    "try:\n    main()\nexcept SystemExit:\n    pass\n"
                    "import sys\nprint('MAXRSS', resource.getrusage(resource.RUSAGE_SELF)"
                    ".ru_maxrss, file=sys.stderr)"
                )
                start = time.perf_counter()
                result = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        code,
                        "demo",
                        "stereo",
                        str(left),
                        str(right),
                        "--max-disparity",
                        str(max_disp),
                        "--out",
                        str(Path(tmp) / "o"),
                        "--json",
                    ],
                    capture_output=True,
                    text=True,
                )
                wall = time.perf_counter() - start
                summary = json.loads(result.stdout)
                rss = int(result.stderr.rsplit("MAXRSS", 1)[1].split()[0]) / 1024
                rows.append(
                    {
                        "megapixels": round(width * height / 1e6, 2),
                        "size": f"{width}x{height}",
                        "max_disparity": max_disp,
                        "wall_s": wall,
                        "peak_rss_mb": rss,
                        "downscaled": summary["downscaled"],
                        **{f"{k}_s": v for k, v in summary["seconds"].items()},
                    }
                )
                print(
                    f"stereo {width}x{height} d={max_disp}: {wall:.1f} s, {rss:.0f} MB",
                    file=sys.stderr,
                    flush=True,
                )
    return rows


# -------------------------------------------------------- 6. start-up


def startup(repeats):
    """The installed `kerazoo --help` (as a user types it) against `python -c
    pass`, and `import tensorflow` alone (nothing else imported) against the
    same, all in fresh processes."""
    import shutil

    script = shutil.which("kerazoo")
    help_cmd = [script, "--help"] if script else [sys.executable, "-m", "kerazoo", "--help"]
    pass_cmd = [sys.executable, "-c", "pass"]
    tf_cmd = [sys.executable, "-c", "import tensorflow"]
    run = lambda cmd: subprocess.run(cmd, capture_output=True, check=False)  # noqa: E731
    help_s, pass_s = paired(lambda: run(help_cmd), lambda: run(pass_cmd), repeats)
    tf_s, _ = paired(lambda: run(tf_cmd), lambda: run(pass_cmd), max(3, repeats // 3))
    return {
        "help_s": help_s,
        "python_s": pass_s,
        "ratio": help_s / pass_s,
        "help_command": " ".join(help_cmd[:1] if script else help_cmd[1:3]),
        "import_tensorflow_s": tf_s,
    }


def table(results):
    import keras

    lines = [
        f"Backend: {keras.backend.backend()}, Keras {keras.__version__}, "
        f"{os.cpu_count()} CPU cores.",
        "",
        "| layer | batch | forward: kerazoo / hand-written | train step: kerazoo / "
        "hand-written | kerazoo forward ms |",
        "|---|---|---|---|---|",
    ]
    for r in results["overhead"]:
        lines.append(
            f"| {r['layer']} | {r['batch']} | {r['forward_ratio']:.3f} | "
            f"{r['train_ratio']:.3f} | {r['forward_ms']:.2f} |"
        )
    g = results["gflops"]
    lines += [
        "",
        f"{g['config']}: {g['block_gflops']:.1f} GFLOP/s vs float32 matmul "
        f"(n={g['matmul_n']}, same FLOPs) {g['matmul_gflops']:.1f} GFLOP/s: "
        f"ratio {g['ratio']:.2f}.",
        "",
        "| layer | jit_compile=True ms | False ms | speed-up | faster |",
        "|---|---|---|---|---|",
    ]
    for r in results["jit"]:
        lines.append(
            f"| {r['layer']} | {r['jit_ms']:.2f} | {r['no_jit_ms']:.2f} | "
            f"{r['jit_speedup']:.2f} | {r['faster']} |"
        )
    if results.get("stereo"):
        lines += [
            "",
            "| stereo pair | max disparity | seconds (wall, fresh process) | "
            "features+corr s | matching s | peak RSS MB | downscaled |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in results["stereo"]:
            lines.append(
                f"| {r['size']} ({r['megapixels']} MP) | {r['max_disparity']} | "
                f"{r['wall_s']:.1f} | {r['features + correlation_s']:.2f} | "
                f"{r['matching_s']:.2f} | {r['peak_rss_mb']:.0f} | {r['downscaled']} |"
            )
    s = results["startup"]
    lines += [
        "",
        f"`{s['help_command']} --help` {s['help_s'] * 1e3:.0f} ms vs `python -c pass` "
        f"{s['python_s'] * 1e3:.0f} ms: ratio {s['ratio']:.1f}. `python -c 'import "
        f"tensorflow'` alone: {s['import_tensorflow_s']:.1f} s.",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, no stereo sweep")
    _results.add_arguments(parser)
    args = parser.parse_args()
    repeats = 5 if args.quick else 30
    results = {
        "overhead": overhead(repeats),
        "gflops": gflops(repeats),
        "jit": jit(repeats),
        "startup": startup(5 if args.quick else 15),
    }
    if not args.quick:
        results["stereo"] = stereo_scaling([0.1, 0.4, 1.0, 10.0, 100.0], [64]) + stereo_scaling(
            [0.4], [32, 128]
        )
    print(table(results))
    _results.write("benchmark", results, args.refresh)


if __name__ == "__main__":
    main()
