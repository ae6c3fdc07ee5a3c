"""Chooses the stereo demo's SGM settings on generated tuning pairs only.

    python benchmarks/stereo_tuning.py [--weights stereo|PATH] [--refresh]

The number of paths (4 or 8), the penalties (P1 for a 1-px step, P2 for a
larger jump) and how fast P2 falls across image edges are picked by the mean densified bad-2 on
generated pairs with seeds 11 and 12, the demo's tuning seeds. The
evaluation pairs (Middlebury Motorcycle, the shipped pair, seeds 101-103) are
never looked at here. The winner is what kerazoo.app.demos.stereo uses
(SGM_PATHS, SGM_P1, SGM_P2, SGM_EDGE); the whole grid goes to the results file.
"""

import argparse
import itertools
import os

import numpy as np

import _results  # benchmarks/_results.py: the script's folder is on sys.path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
TUNING_SEEDS = (11, 12)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="stereo",
                        help="the stem's weights: stereo (shipped) or a .weights.h5")
    _results.add_arguments(parser)
    args = parser.parse_args()

    import keras

    from kerazoo.app.demos import stereo
    from kerazoo.app.demos.stereo_data import bad_pixel_rate, synthetic_pair
    from kerazoo.app.models.stereo import build_matching_model

    stem, label = stereo.stereo_stem(args.weights)
    cases = []
    for seed in TUNING_SEEDS:
        pair = synthetic_pair(seed=seed)
        model = build_matching_model(pair.max_disparity, stem=stem)
        volume = keras.ops.convert_to_numpy(model([pair.left[None].astype("float32"),
                                                   pair.right[None].astype("float32")]))[0]
        cases.append((pair, volume))
    grid = []
    for paths, p1, p2, edge in itertools.product((4, 8), (0.03, 0.08, 0.15, 0.3),
                                                 (0.6, 1.2, 2.4, 4.8), (4.0, 12.0, 1e9)):
        bad2 = []
        for pair, volume in cases:
            cost = stereo.sgm(1 - volume, p1, p2, pair.left.mean(axis=-1), edge, paths)
            disparity, _ = stereo.disparity_from_cost(1 - cost, aggregate=False)
            bad2.append(bad_pixel_rate(disparity, pair.disparity, 2))
        grid.append({"paths": paths, "p1": p1, "p2": p2, "edge": edge,
                     "bad2": round(float(np.mean(bad2)), 4)})
        print(grid[-1], flush=True)
    best = min(grid, key=lambda g: g["bad2"])
    print("best:", best)
    _results.write("stereo_tuning", {"weights": label, "tuning_seeds": TUNING_SEEDS,
                                     "best": best, "grid": grid}, args.refresh)


if __name__ == "__main__":
    main()
