"""kerazoo's stereo settings against OpenCV on two generated evaluation sets
that no setting was chosen on, like for like, in one run.

    python benchmarks/stereo_sets.py [--refresh]        (about 2 minutes, 2 cores)

- R': 9 of scikit-image's photos (`EVALUATION_PHOTOS`), each warped onto a
  generated layered scene, as two different cameras would take it (gain,
  offset, gamma, blur, noise, vignetting, JPEG):
  `kerazoo.app.demos.stereo_scenes.warped_photo_pair`.
- L: 12 scenes seen through a near fence or grille, the same camera
  differences: `see_through_pair`.

The truth covers every pixel (occluded ones, and the band whose match falls
outside the right view), as Middlebury's. Methods and scoring as in
`benchmarks/stereo.py` (it supplies them): each kerazoo setting unfilled,
OpenCV's SGBM as its sample sets it up, the best of its grid (chosen on the
generated tuning pairs 11 and 12), and SGBM + WLS; every map densified by
the same fill. Mean bad-1 / 2 / 4 over each set; results to
benchmarks/results/stereo_sets.json.
"""

import argparse
import os
import sys

import numpy as np
import stereo  # benchmarks/stereo.py: the methods and the scoring

import _results  # benchmarks/_results.py: the script's folder is on sys.path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SETS = {"R'": 9, "L": 12}


def evaluation_set(name):
    from kerazoo.app.demos.stereo_data import StereoPair
    from kerazoo.app.demos.stereo_scenes import see_through_pair, warped_photo_pair

    make = warped_photo_pair if name == "R'" else see_through_pair
    pairs = []
    for index in range(SETS[name]):
        left, right, truth = make(index)
        top = int(np.ceil(np.nanmax(truth))) + 1
        pairs.append(StereoPair(left, right, truth, top, f"{name} {index}", make.__name__))
    return pairs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _results.add_arguments(parser)
    args = parser.parse_args()

    from kerazoo import weights

    block, mode_name, mode, _ = stereo.best_sgbm_grid()
    methods = {stereo.KERAZOO_FAST: lambda p: stereo.kerazoo(p, "stereo")}
    try:
        weights.resolve("stereo_xception_stem_accurate", download=False)
        methods[stereo.KERAZOO_ACCURATE] = lambda p: stereo.kerazoo(p, "stereo", quality="accurate")
    except weights.WeightsError as e:
        print(f"no accurate weights ({e}): its rows are left out", file=sys.stderr)
    methods.update(
        {
            "SGBM (usual)": lambda p: stereo.sgbm(p),
            f"SGBM (best of grid: block {block}, {mode_name})": lambda p: stereo.sgbm(
                p, block, mode
            ),
            stereo.SGBM_WLS: lambda p: stereo.sgbm_wls(p),
        }
    )
    rows = []
    for set_name in SETS:
        pairs = evaluation_set(set_name)
        for method, run in methods.items():
            densified, produced, seconds = [], [], []
            for pair in pairs:
                raw, took, *_ = run(pair)
                produced.append(stereo.scores(raw, pair.disparity)["density"])
                d = stereo.scores(stereo.densify(raw, pair.left), pair.disparity)
                densified.append([d[f"bad{n}"] for n in stereo.THRESHOLDS])
                seconds.append(took)
            mean = np.mean(densified, axis=0)
            rows.append(
                {
                    "set": set_name,
                    "pairs": len(pairs),
                    "method": method,
                    "density": round(float(np.mean(produced)), 4),
                    "densified": {
                        f"bad{n}": round(float(v), 4) for n, v in zip(stereo.THRESHOLDS, mean)
                    },
                    "per_pair_bad2": [round(float(b[1]), 4) for b in densified],
                    "seconds_mean": round(float(np.mean(seconds)), 3),
                }
            )
        print(f"done {set_name}", file=sys.stderr, flush=True)
    lines = [
        "| set | method | density as produced | densified bad-1 / bad-2 / bad-4 | seconds |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        d = r["densified"]
        lines.append(
            f"| {r['set']} (mean of {r['pairs']}) | {r['method']} | {r['density']:.2f} | "
            f"{d['bad1']:.3f} / {d['bad2']:.3f} / {d['bad4']:.3f} | {r['seconds_mean']:.2f} |"
        )
    print("\n".join(lines))
    _results.write("stereo_sets", {"rows": rows, "sgbm_grid_best": [block, mode_name]},
                   args.refresh)  # fmt: skip


if __name__ == "__main__":
    main()
