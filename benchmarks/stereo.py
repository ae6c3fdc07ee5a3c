"""kerazoo's stereo demo against OpenCV's StereoSGBM, side by side, one run.

    python benchmarks/stereo.py [--seeds 3] [--refresh]

Pairs with ground truth: the real Middlebury 2014 "Motorcycle" (quarter
resolution, shipped by scikit-image), the repo's shipped pair, and generated
pairs whose seeds were not used while choosing the demo's settings. Metric:
bad-4, the fraction of ground-truth pixels whose estimate is missing or off by
more than 4 px (missing counts as wrong, for both methods). kerazoo runs with
untrained weights (several random inits: mean and worst) and, where they
resolve locally, ImageNet weights. SGBM runs with OpenCV's documented
settings ("filtered": uniqueness 10, speckle filter, LR check 1) and
without its filters ("dense"), with the same disparity range.

Needs the test extra (opencv-python-headless, scikit-image for the real pair).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import _results  # benchmarks/_results.py: the script's folder is on sys.path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
HELD_OUT_SEEDS = (101, 102, 103)  # the settings were chosen on seeds 11, 12


def pairs():
    from PIL import Image

    from kerazoo.app.demos.stereo_data import StereoPair, motorcycle, synthetic_pair

    out = []
    try:
        out.append(motorcycle())
    except ImportError:
        print("scikit-image missing: skipping the real Middlebury pair", file=sys.stderr)
    data = ROOT / "demos" / "data"
    gt = np.asarray(Image.open(data / "disparity_gt.png"), np.float32) / 256
    gt[gt == 0] = np.nan
    out.append(StereoPair(np.asarray(Image.open(data / "left.png")),
                          np.asarray(Image.open(data / "right.png")), gt,
                          int(np.nanmax(gt)) + 1, "shipped (demos/data)", "generated"))
    out += [synthetic_pair(seed=s) for s in HELD_OUT_SEEDS]
    return out


def sgbm(pair, filtered):
    import cv2

    block = 5
    num = int(np.ceil(pair.max_disparity / 16) * 16)
    extra = (dict(uniquenessRatio=10, speckleWindowSize=100, speckleRange=2, disp12MaxDiff=1)
             if filtered else dict(uniquenessRatio=0, speckleWindowSize=0, disp12MaxDiff=-1))
    matcher = cv2.StereoSGBM_create(minDisparity=0, numDisparities=num, blockSize=block,
                                    P1=8 * 3 * block ** 2, P2=32 * 3 * block ** 2,
                                    mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY, **extra)
    start = time.perf_counter()
    disparity = matcher.compute(pair.left, pair.right).astype(np.float32) / 16
    seconds = time.perf_counter() - start
    disparity[disparity < 0] = np.nan
    return disparity, seconds


def kerazoo_run(pair, weights, seed, tmp):
    from PIL import Image

    from kerazoo.app.demos import stereo

    left, right = Path(tmp) / "l.png", Path(tmp) / "r.png"
    Image.fromarray(pair.left).save(left)
    Image.fromarray(pair.right).save(right)
    stereo.SEED = seed
    summary = stereo.run(left, right, weights=weights, max_disparity_px=pair.max_disparity,
                         out=Path(tmp) / "out")
    return np.load(Path(tmp) / "out" / "disparity.npy"), summary


def cli_wall_seconds(pair, tmp):
    """End to end, as a user runs it: a fresh process, imports included."""
    from PIL import Image

    left, right = Path(tmp) / "cl.png", Path(tmp) / "cr.png"
    Image.fromarray(pair.left).save(left)
    Image.fromarray(pair.right).save(right)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "kerazoo", "demo", "stereo",
         str(left), str(right), "--max-disparity", str(pair.max_disparity), "--weights", "none",
         "--out", str(Path(tmp) / "cli_out"), "--json"], capture_output=True, text=True)
    wall = time.perf_counter() - start
    stages = json.loads(result.stdout)["seconds"]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from kerazoo.app.cli import import_kerazoo; import_kerazoo()"],
                   check=True)
    imports = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    python = time.perf_counter() - start
    return {"wall": wall, "import": imports - python, "python": python, **stages}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="random inits for untrained runs")
    _results.add_arguments(parser)
    args = parser.parse_args()

    from kerazoo import weights as weights_lib
    from kerazoo.app.demos.stereo_data import bad_pixel_rate

    try:
        weights_lib.resolve("xception_notop", download=False)
        weight_sets = ["none", "imagenet"]
    except weights_lib.WeightsError:
        weight_sets = ["none"]
        print("ImageNet Xception weights not available locally: untrained only",
              file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for pair in pairs():
            row = {"pair": pair.name, "size": list(pair.left.shape[1::-1]),
                   "max_disparity": pair.max_disparity}
            for filtered in (True, False):
                disparity, seconds = sgbm(pair, filtered)
                key = "sgbm_filtered" if filtered else "sgbm_dense"
                row[key] = {"bad4": bad_pixel_rate(disparity, pair.disparity), "seconds": seconds}
            for weights in weight_sets:
                seeds = range(args.seeds) if weights == "none" else [0]
                scores, seconds = [], []
                for seed in seeds:
                    disparity, summary = kerazoo_run(pair, weights, seed, tmp)
                    scores.append(bad_pixel_rate(disparity, pair.disparity))
                    seconds.append(summary["seconds"])
                key = "kerazoo_random" if weights == "none" else "kerazoo_imagenet"
                row[key] = {"bad4": float(np.mean(scores)), "bad4_worst": float(np.max(scores)),
                            "runs": len(scores), "seconds": seconds[-1]}
            rows.append(row)
            print(f"done {pair.name}", file=sys.stderr, flush=True)
        timing = cli_wall_seconds(pairs()[0], tmp)

    lines = ["| pair | size | kerazoo untrained bad-4 (mean / worst) | " +
             ("kerazoo ImageNet bad-4 | " if "imagenet" in weight_sets else "") +
             "SGBM bad-4 (filtered / dense) | kerazoo / SGBM-dense bad-4 | "
             "kerazoo s (features+corr, matching) | SGBM s |",
             "|---|---|---|" + ("---|" if "imagenet" in weight_sets else "") + "---|---|---|---|"]
    for r in rows:
        k = r["kerazoo_random"]
        imagenet = (f"{r['kerazoo_imagenet']['bad4']:.3f} | " if "kerazoo_imagenet" in r else "")
        lines.append(
            f"| {r['pair']} | {r['size'][0]}x{r['size'][1]} | {k['bad4']:.3f} / "
            f"{k['bad4_worst']:.3f} | {imagenet}{r['sgbm_filtered']['bad4']:.3f} / "
            f"{r['sgbm_dense']['bad4']:.3f} | {k['bad4'] / r['sgbm_dense']['bad4']:.2f} | "
            f"{k['seconds']['features + correlation']:.2f}, {k['seconds']['matching']:.2f} | "
            f"{r['sgbm_dense']['seconds']:.2f} |")
    t = timing
    lines.append("")
    lines.append(f"End to end on the first pair, fresh process (`kerazoo demo stereo`): "
                 f"{t['wall']:.2f} s = imports {t['import']:.2f} s (TensorFlow, Keras, kerazoo; "
                 f"`python -c pass` {t['python']:.2f} s) + build {t['build model']:.2f} s + "
                 f"features {t['features + correlation']:.2f} s + similarity "
                 f"{t['similarity']:.2f} s + matching {t['matching']:.2f} s + writing "
                 f"{t['write outputs']:.2f} s.")
    print("\n".join(lines))
    _results.write("stereo", {"rows": rows, "timing": timing}, args.refresh)


if __name__ == "__main__":
    main()
