"""Chooses `StereoMatcher`'s matching settings on generated tuning pairs only.

    python benchmarks/stereo_tuning.py [--weights stereo|PATH] [--keep-sgm-grid] [--refresh]

Grid search in stages, each with the earlier stages' winners fixed, ranked
by mean densified bad-2 (ties to the lower bad-1): SGM's paths, P1, P2 and
edge on seeds 11-12; then, at the default disparity range (a quarter of the
width) on seeds 11-16, the out-of-view score, the speckle filter, the fill
against the plain row fill, the left-right check and the fill's settings.
The winners are `StereoMatcher`'s defaults; every grid goes to
benchmarks/results/stereo_tuning.json (with --refresh, else benchmarks/out/).

The rule: only generated pairs whose truth covers the left band, as
Middlebury's does, are tuned on. The evaluation pairs of
benchmarks/stereo.py (Motorcycle, the shipped pair, seeds 101-103) are
never looked at here.
"""

import argparse
import functools
import itertools
import json
import os

import numpy as np

import _results  # benchmarks/_results.py: the script's folder is on sys.path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
TUNING_SEEDS = (11, 12)
LATER_SEEDS = (11, 12, 13, 14, 15, 16)  # never 101-103, the benchmark's held-out pairs


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights", default="stereo", help="the stem's weights: stereo (shipped) or a .weights.h5"
    )
    parser.add_argument(
        "--keep-sgm-grid",
        action="store_true",
        help="reuse benchmarks/results/stereo_tuning.json's SGM grid",
    )
    _results.add_arguments(parser)
    args = parser.parse_args()

    from kerazoo.app.demos.stereo_data import synthetic_pair
    from kerazoo.stereo import StereoMatcher, bad_pixel_rate, fill_occlusions, median3, prepare_pair
    from kerazoo.stereo.matching import row_fill

    features = StereoMatcher(args.weights)  # the features the matcher computes

    def volumes(max_disparity=None, seeds=TUNING_SEEDS):
        """(pair, prepared views, correlation) for each tuning pair, at its
        own disparity range or at `max_disparity(pair)`."""
        out = []
        for seed in seeds:
            pair = synthetic_pair(seed=seed, truth_out_of_view=True)
            depth = max_disparity(pair) if max_disparity else pair.max_disparity
            views = prepare_pair(pair.left, pair.right)
            out.append((pair, views, features.correlate(*views, max_disparity=depth)))
        return out

    def matcher(**settings):
        return StereoMatcher(args.weights, check_swapped=False, **settings)

    cases = volumes()

    def rates(settings):
        """Mean densified bad-2 and bad-1 over the cases: the right view read
        from the left's cost, the fill by distance alone."""
        m = matcher(right_sgm_paths=None, fill_color_per_px=None, **settings)
        bad2, bad1 = [], []
        for pair, views, volume in cases:
            disparity, _ = m.match(volume, *views)
            bad2.append(bad_pixel_rate(disparity, pair.disparity, 2))
            bad1.append(bad_pixel_rate(disparity, pair.disparity, 1))
        return {"bad2": round(float(np.mean(bad2)), 5), "bad1": round(float(np.mean(bad1)), 5)}

    if args.keep_sgm_grid:
        grid = json.loads((_results.COMMITTED / "stereo_tuning.json").read_text())["grid"]
    else:
        grid = []
        for paths, p1, p2, edge in itertools.product(
            (4, 8), (0.03, 0.08, 0.15, 0.3), (0.6, 1.2, 2.4, 4.8), (4.0, 12.0, 1e9)
        ):
            sgm = {"sgm_paths": paths, "p1": p1, "p2": p2, "edge": edge}
            grid.append(
                {
                    "paths": paths,
                    "p1": p1,
                    "p2": p2,
                    "edge": edge,
                    **rates({**sgm, "speckle_size": 200, "speckle_step_px": 2.0}),
                }
            )
            print(grid[-1], flush=True)
    best = min(grid, key=lambda g: (g["bad2"], g["bad1"]))
    print("best:", best)
    sgm_best = {
        "sgm_paths": best["paths"],
        "p1": best["p1"],
        "p2": best["p2"],
        "edge": best["edge"],
    }
    # As the matcher runs by default: the range is a quarter of the width.
    cases = volumes(lambda pair: max(16, pair.left.shape[1] // 4), seeds=LATER_SEEDS)
    out_of_view = []
    for quantile in (None, 0.5, 0.75, 0.9, 1.0):
        out_of_view.append(
            {
                "out_of_view_quantile": quantile,
                **rates({**sgm_best, "out_of_view_quantile": quantile}),
            }
        )
        print(out_of_view[-1], flush=True)
    best_out_of_view = min(out_of_view, key=lambda g: (g["bad2"], g["bad1"]))
    print("best:", best_out_of_view)
    settings = {**sgm_best, "out_of_view_quantile": best_out_of_view["out_of_view_quantile"]}
    speckles = []
    for size, step in itertools.product((0, 25, 50, 100, 200, 400, 800), (1.0, 2.0)):
        speckles.append(
            {
                "speckle_size": size,
                "speckle_step_px": step,
                **rates({**settings, "speckle_size": size, "speckle_step_px": step}),
            }
        )
        print(speckles[-1], flush=True)
    best_speckles = min(speckles, key=lambda g: (g["bad2"], g["bad1"]))
    print("best:", best_speckles)
    settings.update(
        speckle_size=best_speckles["speckle_size"], speckle_step_px=best_speckles["speckle_step_px"]
    )
    fills = {"row": [], "left edge: nearest right, above or below": []}
    checks = {
        "right view read from the left's cost": [],
        "right view's own SGM, 4 paths": [],
        "right view's own SGM, 8 paths": [],
    }
    edges = {edge_px: [] for edge_px in (0, 1, 2, 3)}
    behind = {behind_both_px: [] for behind_both_px in (None, 0.0, 1.0, 2.0, 4.0)}
    colors = {color_per_px: [] for color_per_px in (None, 1.0, 2.0, 4.0, 8.0)}
    unfilled_from_left = matcher(fill=False, right_sgm_paths=None, **settings)
    unfilled = matcher(fill=False, **settings)
    checked = {
        paths: matcher(right_sgm_paths=paths, fill_color_per_px=None, **settings)
        for paths in (None, 4, 8)
    }
    for pair, views, volume in volumes(seeds=LATER_SEEDS):

        def three_rates(dense):
            return [bad_pixel_rate(dense, pair.disparity, n) for n in (1, 2, 4)]

        raw, _ = unfilled_from_left.match(volume, *views)
        for name, fill in zip(
            fills, (row_fill, functools.partial(fill_occlusions, edge_px=0, behind_both_px=None))
        ):
            fills[name].append(three_rates(median3(fill(raw))))
        for name, right_paths in zip(checks, (None, 4, 8)):
            checks[name].append(three_rates(checked[right_paths].match(volume, *views)[0]))
        raw, _ = unfilled.match(volume, *views)
        for edge_px in edges:
            edges[edge_px].append(
                three_rates(median3(fill_occlusions(raw, edge_px=edge_px, behind_both_px=None)))
            )
        for behind_both_px in behind:
            behind[behind_both_px].append(
                three_rates(median3(fill_occlusions(raw, behind_both_px=behind_both_px)))
            )
        for color_per_px in colors:
            colors[color_per_px].append(
                three_rates(
                    median3(fill_occlusions(raw, image=pair.left, color_per_px=color_per_px))
                )
            )

    def summary(key, results):
        return [
            {
                key: name,
                **{
                    f"bad{n}": round(float(v), 5)
                    for n, v in zip((1, 2, 4), np.mean(rates_, axis=0))
                },
                "bad2_per_pair": [round(r[1], 5) for r in rates_],
            }
            for name, rates_ in results.items()
        ]

    fill_grid, check_grid = summary("fill", fills), summary("left_right_check", checks)
    edge_grid = summary("fill_edge_px", edges)
    behind_grid = summary("fill_behind_both_px", behind)
    color_grid = summary("fill_color_per_px", colors)
    for row in fill_grid + check_grid + edge_grid + behind_grid + color_grid:
        print(row, flush=True)
    _results.write(
        "stereo_tuning",
        {
            "weights": features.weights_label,
            "policy": features.policy,
            "tuning_seeds": TUNING_SEEDS,
            "later_stages_seeds": LATER_SEEDS,
            "truth_out_of_view": True,
            "best": best,
            "grid": grid,
            "best_out_of_view": best_out_of_view,
            "out_of_view_grid": out_of_view,
            "best_speckles": best_speckles,
            "speckle_grid": speckles,
            "fill_grid": fill_grid,
            "left_right_check_grid": check_grid,
            "fill_edge_grid": edge_grid,
            "fill_behind_both_grid": behind_grid,
            "fill_color_grid": color_grid,
        },
        args.refresh,
    )


if __name__ == "__main__":
    main()
