"""kerazoo's stereo demo against OpenCV, like for like, in one run.

    python benchmarks/stereo.py [--refresh]          (about 3 minutes, 2 cores)

Pairs with ground truth: the real Middlebury 2014 "Motorcycle" (as
scikit-image ships it, 741x500), the repo's shipped pair, and generated pairs
(seeds 101-103) that nothing was trained or tuned on. Like Middlebury's, the
generated pairs' truth covers the left band whose match falls outside the
right view (the shipped pair's file leaves it unknown).

Methods, each as its users run it:
- kerazoo: `kerazoo.stereo.StereoMatcher` with its defaults (stereo-trained
  stem, BatchNormalization folded, run by ONNX Runtime in float32; SGM,
  left-right check), unfilled; again with `quality="accurate"` (the larger
  network, also by ONNX Runtime); again with the Keras runtime (its `auto`
  precision: mixed_bfloat16 under TensorFlow on a CPU with bfloat16); and
  with random weights, to show what the training brings.
- SGBM (usual): OpenCV's StereoSGBM as its sample (samples/python/stereo_match.py)
  sets it up: P1 = 8*3*b^2, P2 = 32*3*b^2, uniqueness 10, speckle filter
  100/32, left-right check 1, block 5, MODE_SGBM.
- SGBM (best of grid): block 3/5/7/9 x MODE_SGBM_3WAY/MODE_HH, the usual
  filters; the one with the lowest bad-2 after densifying on the generated
  tuning pairs (seeds 11, 12), never on the pairs reported here.
- SGBM + WLS: the usual SGBM with opencv-contrib's weighted-least-squares
  filter (ximgproc, lambda 8000, sigma 1.5, as OpenCV's tutorial): the dense
  map OpenCV users make.

Every method is reported as produced (with its density: the share of
ground-truth pixels it estimates; a missing estimate counts as an error) and
densified by one and the same fill, the demo's own post-processing
(`kerazoo.stereo.densify`: `fill_occlusions` guided by the left view's
colours, then a 3x3 median). bad-N = share of ground-truth pixels off by
more than N px; MAE = median absolute error over the pixels estimated.
Seconds are the matcher's own, features and aggregation included, imports
excluded.

Needs the test extra (OpenCV) and, for WLS, opencv-contrib-python-headless;
scikit-image for the Middlebury pair.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import _results  # benchmarks/_results.py: the script's folder is on sys.path

# The methods' names in the results files; stereo_sets.py and tables.py use
# these, so a renamed method cannot leave a table reading a stale row.
KERAZOO_FAST = "kerazoo (stereo-trained)"
KERAZOO_ACCURATE = "kerazoo (stereo-trained, accurate)"
SGBM_WLS = "SGBM + WLS"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
HELD_OUT_SEEDS = (101, 102, 103)
TUNING_SEEDS = (11, 12)
THRESHOLDS = (1, 2, 4)


def shipped_pair():
    from PIL import Image

    from kerazoo.app.demos.stereo_data import StereoPair

    data = ROOT / "demos" / "data"
    gt = np.asarray(Image.open(data / "disparity_gt.png"), np.float32) / 256
    gt[gt == 0] = np.nan
    return StereoPair(
        np.asarray(Image.open(data / "left.png").convert("RGB")),
        np.asarray(Image.open(data / "right.png").convert("RGB")),
        gt,
        int(np.nanmax(gt)) + 1,
        "shipped (demos/data)",
        "generated",
    )


def evaluation_pairs():
    from kerazoo.app.demos.stereo_data import motorcycle, synthetic_pair

    pairs = []
    try:
        pairs.append(motorcycle())
    except ImportError:
        print("scikit-image missing: no Middlebury pair", file=sys.stderr)
    pairs.append(shipped_pair())
    return pairs + [synthetic_pair(seed=s, truth_out_of_view=True) for s in HELD_OUT_SEEDS]


def densify(disparity, left):
    from kerazoo.stereo import densify

    return densify(disparity, left)


def scores(disparity, truth):
    known = np.isfinite(truth)
    estimated = np.isfinite(disparity) & known
    error = np.abs(np.nan_to_num(disparity, nan=1e9) - truth)[known]
    out = {f"bad{n}": round(float((error > n).mean()), 4) for n in THRESHOLDS}
    out["mae_median"] = (
        round(float(np.median(np.abs(disparity - truth)[estimated])), 3)
        if estimated.any()
        else None
    )
    out["density"] = round(float(estimated.sum() / known.sum()), 4)
    return out


def _sgbm_matcher(pair, block, mode):
    import cv2

    return cv2.StereoSGBM_create(
        minDisparity=0,
        numDisparities=int(np.ceil(pair.max_disparity / 16) * 16),
        blockSize=block,
        P1=8 * 3 * block**2,
        P2=32 * 3 * block**2,
        disp12MaxDiff=1,
        uniquenessRatio=10,
        speckleWindowSize=100,
        speckleRange=32,
        mode=mode,
    )


def sgbm(pair, block=5, mode=None):
    import cv2

    matcher = _sgbm_matcher(pair, block, cv2.STEREO_SGBM_MODE_SGBM if mode is None else mode)
    start = time.perf_counter()
    raw = matcher.compute(pair.left, pair.right).astype(np.float32) / 16
    seconds = time.perf_counter() - start
    raw[raw < 0] = np.nan
    return raw, seconds


def sgbm_wls(pair, block=5):
    import cv2

    left_matcher = _sgbm_matcher(pair, block, cv2.STEREO_SGBM_MODE_SGBM)
    right_matcher = cv2.ximgproc.createRightMatcher(left_matcher)
    wls = cv2.ximgproc.createDisparityWLSFilter(left_matcher)
    wls.setLambda(8000.0)
    wls.setSigmaColor(1.5)
    start = time.perf_counter()
    left_disp = left_matcher.compute(pair.left, pair.right)
    right_disp = right_matcher.compute(pair.right, pair.left)
    dense = wls.filter(left_disp, pair.left, disparity_map_right=right_disp)
    seconds = time.perf_counter() - start
    dense = dense.astype(np.float32) / 16
    dense[dense < 0] = np.nan
    return dense, seconds


def best_sgbm_grid():
    """The grid point with the lowest mean densified bad-2 on the tuning pairs."""
    import cv2

    from kerazoo.app.demos.stereo_data import synthetic_pair

    tuning = [synthetic_pair(seed=s, truth_out_of_view=True) for s in TUNING_SEEDS]
    modes = {"3WAY": cv2.STEREO_SGBM_MODE_SGBM_3WAY, "HH": cv2.STEREO_SGBM_MODE_HH}
    results = []
    for block in (3, 5, 7, 9):
        for name, mode in modes.items():
            bad2 = np.mean(
                [
                    scores(densify(sgbm(p, block, mode)[0], p.left), p.disparity)["bad2"]
                    for p in tuning
                ]
            )
            results.append((bad2, block, name, mode))
    bad2, block, name, mode = min(results)
    return (
        block,
        name,
        mode,
        [dict(block=b, mode=n, tuning_bad2=round(float(v), 4)) for v, b, n, _ in results],
    )


_MATCHERS = {}


def kerazoo(pair, weights, runtime="auto", quality="fast"):
    """`StereoMatcher` as a user runs it (its default precision), unfilled:
    the same fill densifies every method below."""
    from kerazoo.stereo import StereoMatcher

    key = weights, runtime, quality
    if key not in _MATCHERS:  # built once: a user keeps one matcher
        _MATCHERS[key] = StereoMatcher(
            weights,
            fill=False,
            max_pixels=None,
            check_swapped=False,
            runtime=runtime,
            quality=quality,
        )
    matcher = _MATCHERS[key]
    matcher.max_disparity = pair.max_disparity
    start = time.perf_counter()
    result = matcher.compute(pair.left, pair.right)
    seconds = time.perf_counter() - start
    return (
        result.disparity,
        seconds,
        {
            "features_and_correlation": result.seconds["features + correlation"],
            "weights": matcher.weights_label,
            "policy": matcher.policy,
        },
    )


TIMING = """
import json, os, sys, time
import numpy as np
from kerazoo.app.demos.stereo_data import motorcycle
from kerazoo.stereo import StereoMatcher, prepare_pair
from kerazoo.stereo.stem import build_matching_model, correlate_in_strips, keras_volume_of
pair = motorcycle()
precision = "float32" if sys.argv[1] == "unfolded" else sys.argv[1]
matcher = StereoMatcher(max_disparity=pair.max_disparity, precision=precision,
                        runtime="keras", quality=sys.argv[2])
left, right = prepare_pair(pair.left, pair.right)
if sys.argv[1] == "unfolded":  # as trained: float32, BatchNormalization layers
    model = build_matching_model(pair.max_disparity, stem=matcher.stem)
    def correlate():
        return correlate_in_strips(keras_volume_of(model), left, right)
else:  # as the matcher runs it
    def correlate():
        return matcher.correlate(left, right, pair.max_disparity)
out = {}
features, matching = [], []
for call in range(4):  # strips, compiled once
    start = time.perf_counter()
    volume = correlate()
    features.append(time.perf_counter() - start)
for call in range(4):  # the first loads the compiled kernels
    scores = volume.copy()
    start = time.perf_counter()
    disparity, _ = matcher.match(scores, left, right, overwrite=True)
    matching.append(time.perf_counter() - start)
# The first call, and the median of the next three (this machine is noisy).
for name, seconds in (("features", features), ("matching", matching)):
    out[f"{name}_first_s"] = round(seconds[0], 3)
    out[f"{name}_warm_s"] = round(float(np.median(seconds[1:])), 3)
known = np.isfinite(pair.disparity)
out["bad2"] = round(float((np.abs(np.nan_to_num(disparity, nan=1e9) - pair.disparity)[known]
                           > 2).mean()), 4)
print(json.dumps(out))
"""

# Two CPU-bound processes of two BLAS threads each: on 2 cores, the load
# holds two thirds of the machine beside one matcher.
LOAD = """
import time, numpy as np
a = np.random.default_rng(0).standard_normal((1500, 1500))
end = time.time() + float(__import__("sys").argv[1])
while time.time() < end:
    a = np.tanh(a @ a)
"""


def busy_machine_timing(repeats=5):
    """The matching (features excluded) on Motorcycle's volume: idle, beside
    two multi-threaded CPU-bound processes, and on one thread beside the
    same load, in this one run; median of `repeats` calls each."""
    import subprocess

    import numba

    from kerazoo.app.demos.stereo_data import motorcycle
    from kerazoo.stereo import StereoMatcher, prepare_pair

    pair = motorcycle()
    matcher = StereoMatcher(max_disparity=pair.max_disparity)
    left, right = prepare_pair(pair.left, pair.right)
    volume = matcher.correlate(left, right)
    matcher.match(volume.copy(), left, right, overwrite=True)  # kernels loaded

    def median_seconds():
        seconds = []
        for _ in range(repeats):
            scores = volume.copy()
            start = time.perf_counter()
            matcher.match(scores, left, right, overwrite=True)
            seconds.append(time.perf_counter() - start)
        return round(float(np.median(seconds)), 3)

    threads = numba.get_num_threads()
    row = {"threads": threads, "threading_layer": None, "idle_s": median_seconds()}
    row["threading_layer"] = numba.threading_layer()
    env = {
        **os.environ,
        "OPENBLAS_NUM_THREADS": "2",
        "OMP_NUM_THREADS": "2",
        "MKL_NUM_THREADS": "2",
    }
    load = [subprocess.Popen([sys.executable, "-c", LOAD, "600"], env=env) for _ in range(2)]
    try:
        time.sleep(2.0)  # the load is running
        row["busy_s"] = median_seconds()
        numba.set_num_threads(1)
        row["busy_one_thread_s"] = median_seconds()
        numba.set_num_threads(threads)
    finally:
        for process in load:
            process.kill()
            process.wait()
    row["busy_over_idle"] = round(row["busy_s"] / row["idle_s"], 2)
    row["busy_over_one_thread"] = round(row["busy_s"] / row["busy_one_thread_s"], 2)
    print(row, file=sys.stderr, flush=True)
    return row


def sequence_timing(frames=10, height=480, width=832, max_disparity=70):
    """Features + matching per pair over a sequence of generated frames of
    0.4 MP in one process, through one `StereoMatcher`: the first frame
    builds and compiles, the others reuse it. Motorcycle's disparity range."""
    from kerazoo.app.demos.stereo_data import synthetic_pair
    from kerazoo.stereo import StereoMatcher

    pairs = [
        synthetic_pair(height=height, width=width, seed=200 + i, max_disparity=max_disparity)
        for i in range(frames)
    ]
    matcher = StereoMatcher(max_disparity=max_disparity, check_swapped=False)
    seconds = []
    for pair in pairs:
        start = time.perf_counter()
        matcher.compute(pair.left, pair.right)
        seconds.append(time.perf_counter() - start)
    row = {
        "frames": frames,
        "size": [width, height],
        "max_disparity": max_disparity,
        "policy": matcher.policy,
        "first_s": round(seconds[0], 3),
        "median_after_first_s": round(float(np.median(seconds[1:])), 3),
        "per_frame_s": [round(s, 3) for s in seconds],
    }
    print(row, file=sys.stderr, flush=True)
    return row


def backend_timing():
    """Features + correlation and matching on Motorcycle (0.37 MP) under each
    backend, in float32 and mixed_bfloat16 (BatchNormalization folded, as the
    demo runs it; under TensorFlow also the stem as trained, "unfolded", and
    the accurate network), each in a fresh process;
    the first call includes tracing/compiling (the features) and loading the
    compiled kernels from numba's disk cache (the matching); "warm" is the
    median of the next three calls."""
    import json
    import subprocess

    rows = []
    for backend, policy, quality in (
        ("tensorflow", "unfolded", "fast"),
        ("tensorflow", "float32", "fast"),
        ("tensorflow", "mixed_bfloat16", "fast"),
        ("tensorflow", "float32", "accurate"),
        ("tensorflow", "mixed_bfloat16", "accurate"),
        ("jax", "float32", "fast"),
        ("jax", "mixed_bfloat16", "fast"),
        ("torch", "float32", "fast"),
        ("torch", "mixed_bfloat16", "fast"),
    ):
        result = subprocess.run(
            [sys.executable, "-c", TIMING, policy, quality],
            capture_output=True,
            text=True,
            env={**os.environ, "KERAS_BACKEND": backend},
        )
        if result.returncode != 0:
            print(f"timing under {backend} failed: {result.stderr[-300:]}", file=sys.stderr)
            continue
        rows.append(
            {
                "backend": backend,
                "policy": policy,
                "quality": quality,
                **json.loads(result.stdout.strip().splitlines()[-1]),
            }
        )
        print(rows[-1], file=sys.stderr, flush=True)
    return rows


def speed_lines(busy, sequence):
    return [
        "",
        "| matching on Motorcycle (s, median of 5) | idle | busy | busy, one thread | "
        "busy / idle | busy / one thread |",
        "|---|---|---|---|---|---|",
        f"| {busy['threads']} threads ({busy['threading_layer']}) | {busy['idle_s']:.2f} | "
        f"{busy['busy_s']:.2f} | {busy['busy_one_thread_s']:.2f} | "
        f"{busy['busy_over_idle']:.2f} | {busy['busy_over_one_thread']:.2f} |",
        "",
        "| sequence | frames | first frame s | median of the others s |",
        "|---|---|---|---|",
        f"| {sequence['size'][0]}x{sequence['size'][1]}, D {sequence['max_disparity']}, "
        f"{sequence['policy']} | {sequence['frames']} | {sequence['first_s']:.2f} | "
        f"{sequence['median_after_first_s']:.2f} |",
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _results.add_arguments(parser)
    parser.add_argument(
        "--speed-only",
        action="store_true",
        help="only the busy-machine and sequence timings (stereo_speed.json)",
    )
    args = parser.parse_args()
    if args.speed_only:
        busy, sequence = busy_machine_timing(), sequence_timing()
        print("\n".join(speed_lines(busy, sequence)))
        _results.write("stereo_speed", {"busy_machine": busy, "sequence": sequence}, args.refresh)
        return

    block, mode_name, mode, grid = best_sgbm_grid()
    print(f"SGBM grid on the tuning pairs: best block {block}, {mode_name}", file=sys.stderr)
    methods = {
        KERAZOO_FAST: lambda p: kerazoo(p, "stereo"),
        KERAZOO_ACCURATE: lambda p: kerazoo(p, "stereo", quality="accurate"),
        "kerazoo (stereo-trained, Keras runtime)": lambda p: kerazoo(p, "stereo", "keras"),
        "kerazoo (random weights)": lambda p: kerazoo(p, None),
        "SGBM (usual)": lambda p: sgbm(p),
        f"SGBM (best of grid: block {block}, {mode_name})": lambda p: sgbm(p, block, mode),
        SGBM_WLS: lambda p: sgbm_wls(p),
    }
    rows = []
    for pair in evaluation_pairs():
        for method, run in methods.items():
            raw, seconds, *extra = run(pair)
            rows.append(
                {
                    "pair": pair.name,
                    "size": list(pair.left.shape[1::-1]),
                    "method": method,
                    "seconds": round(seconds, 3),
                    "as_produced": scores(raw, pair.disparity),
                    "densified": scores(densify(raw, pair.left), pair.disparity),
                    **(extra[0] if extra else {}),
                }
            )
        print(f"done {pair.name}", file=sys.stderr, flush=True)

    lines = [
        "| pair | method | density | bad-1 / bad-2 / bad-4 as produced | "
        "densified bad-1 / bad-2 / bad-4 | densified median error px | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a, d = r["as_produced"], r["densified"]
        lines.append(
            f"| {r['pair']} | {r['method']} | {a['density']:.2f} | {a['bad1']:.3f} / "
            f"{a['bad2']:.3f} / {a['bad4']:.3f} | **{d['bad1']:.3f} / {d['bad2']:.3f} / "
            f"{d['bad4']:.3f}** | {d['mae_median']} | {r['seconds']:.2f} |"
        )
    timing = backend_timing()
    lines += [
        "",
        "| backend | policy | network | features + correlation s (first call / warm) | "
        "matching s (first call / warm) | features + matching s (first / warm) | "
        "Motorcycle bad-2 |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {t['backend']} | {t['policy']} | {t['quality']} | {t['features_first_s']:.2f} / "
        f"{t['features_warm_s']:.2f} | {t['matching_first_s']:.2f} / "
        f"{t['matching_warm_s']:.2f} | "
        f"{t['features_first_s'] + t['matching_first_s']:.2f} / "
        f"{t['features_warm_s'] + t['matching_warm_s']:.2f} | {t['bad2']:.3f} |"
        for t in timing
    ]
    busy, sequence = busy_machine_timing(), sequence_timing()
    lines += speed_lines(busy, sequence)
    print("\n".join(lines))
    _results.write(
        "stereo",
        {
            "rows": rows,
            "sgbm_grid": grid,
            "held_out_seeds": HELD_OUT_SEEDS,
            "tuning_seeds": TUNING_SEEDS,
            "timing": timing,
        },
        args.refresh,
    )
    _results.write("stereo_speed", {"busy_machine": busy, "sequence": sequence}, args.refresh)


if __name__ == "__main__":
    main()
