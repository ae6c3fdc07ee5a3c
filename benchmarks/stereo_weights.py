"""Compares stereo stems and matching settings on the tuning pairs only
(generated, and one real pair): the measurement that decides whether a
training segment or a setting helped.

    python benchmarks/stereo_weights.py [--weights stereo PATH CHECKPOINT ...]
        [--quality accurate] [--p1 0.3 ...] [--p2 4.8 ...] [--max-cost 2 0.7 ...]
        [--setting speckle_size=200,500 ...] [--seeds 11 ...]
        [--photo-pairs 24] [--no-real] [--refresh]

Each stem matches the tuning pairs (seeds 11-16, the seeds the matcher's
settings were chosen on, or `--seeds`; never the benchmark's held-out
101-103 or Motorcycle) as generated (T) and again as two different cameras
would have taken them (T', `with_camera_differences`), and the training
photos warped onto generated scenes (P, `tuning_photo_pair`: real textures,
made as the held-out R' is made from other photos; `--photo-pairs 0`
leaves it out), and the real Middlebury pair Aloe at half size (A,
`real_pairs`: benchmarks/data/aloe, the one real pair a setting may be
chosen on; `--no-real` leaves it out). Mean densified bad-1 / 2 / 4 per
set; results to
benchmarks/results/stereo_weights.json. With several `--p1`/`--p2`/
`--max-cost`, a row for each combination of SGM penalties and cost
truncation (a network's own are chosen here; a `--max-cost` of 2 truncates
nothing). `--setting NAME=V1,V2` adds any other matching setting of
`StereoMatcher` to the grid (`none` for None), e.g. `speckle_size=200,500`
or `right_sgm_paths=none,4,8`.

A weights entry is `stereo` (the shipped network of its `--quality`), a
`.weights.h5` of the quality's network, or a training checkpoint's folder
(`demos/train_stereo.py --checkpoint-dir`): its `state.json` says which
network it trains, refining blocks included, and the census weight it was
trained with (`--census-weight`), which it then matches with.
"""

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np
from stereo import HELD_OUT_SEEDS  # benchmarks/stereo.py: no setting is chosen on them

from kerazoo.app.demos.stereo_scenes import TUNING_PHOTO_PAIRS

import _results  # benchmarks/_results.py: the script's folder is on sys.path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
TUNING_SEEDS = (11, 12, 13, 14, 15, 16)


def matcher_for(weights, quality):
    """`(StereoMatcher, label)` for one `--weights` entry. The Keras runtime
    in float32: any weights, the same arithmetic for each."""
    from kerazoo.stereo import StereoMatcher
    from kerazoo.stereo.stem import load_stem

    settings = dict(check_swapped=False, runtime="keras", precision="float32")
    state = Path(weights) / "state.json"
    if not state.is_file():
        return StereoMatcher(weights, quality=quality, **settings), weights
    checkpoint = json.loads(state.read_text())
    network = checkpoint["settings"]
    quality = network.get("quality", "fast")
    dilations = network.get("refine_dilations")  # None: the quality's own
    stem = load_stem(Path(weights) / "stem.weights.h5", quality, dilations)[0]
    label = f"{weights} (step {checkpoint['step']})"
    # A network trained on the census blend (--census-weight) matches with
    # the share it learnt to complement.
    if network.get("census_weight"):
        settings["census_weight"] = network["census_weight"]
    return StereoMatcher(stem, quality=quality, **settings), label


def volumes(matcher, pairs):
    """Each pair's prepared views and correlation at the matcher's default
    range: the network runs once, the matching once per setting."""
    from kerazoo.stereo import prepare_pair

    out = []
    for left, right, truth in pairs:
        views = prepare_pair(left, right)
        out.append((views, matcher.correlate(*views), truth))
    return out


def tuning_pairs(parser, seeds):
    """`(T, T')`: the generated tuning pairs of `seeds` as `(left, right,
    truth)`, and the same taken by two different cameras; `parser` refuses
    the held-out seeds."""
    if set(seeds) & set(HELD_OUT_SEEDS):
        parser.error(f"--seeds: {HELD_OUT_SEEDS} are held out, never tuned on")
    from kerazoo.app.demos.stereo_data import synthetic_pair
    from kerazoo.app.demos.stereo_scenes import with_camera_differences

    plain, cameras = [], []
    for seed in seeds:
        pair = synthetic_pair(seed=seed, truth_out_of_view=True)
        plain.append((pair.left, pair.right, pair.disparity))
        cameras.append((*with_camera_differences(pair.left, pair.right, seed), pair.disparity))
    return plain, cameras


def photo_pairs(count):
    """Set P: the first `count` `tuning_photo_pair`s as `(left, right, truth)`."""
    from kerazoo.app.demos.stereo_scenes import tuning_photo_pair

    return [tuning_photo_pair(index) for index in range(count)]


# The `StereoMatcher` arguments that act after the network: a grid over them
# reuses each pair's correlation.
MATCHING_SETTINGS = {
    "census_weight": float,
    "census_sigma_px": float,
    "sgm_paths": int,
    "edge": float,
    "right_sgm_paths": int,
    "lr_tolerance_px": float,
    "color_check_levels": float,
    "border_margin_px": int,
    "speckle_size": int,
    "speckle_step_px": float,
    "out_of_view_quantile": float,
    "fill_edge_px": int,
    "fill_behind_both_px": float,
    "fill_color_per_px": float,
    "fill_median_radius_px": int,
    "fill_median_color_sigma": float,
    "fill_median_distance_sigma_px": float,
}


def parse_setting(parser, flag, kinds, text, many):
    """`(name, values)` from `NAME=V1,V2` (`many`) or `(name, value)` from
    `NAME=VALUE` (the caller split on commas), each value of `kinds[name]`
    ('none': None); `parser` refuses an unknown name or a value of another
    kind, naming `flag`."""
    name, _, values = text.partition("=")
    form = "NAME=V1,V2" if many else "NAME=VALUE"
    if name not in kinds or not values:
        parser.error(f"{flag}: must be {form} with NAME one of {sorted(kinds)}, received {text!r}")
    kind = kinds[name]
    try:
        typed = [None if v == "none" else kind(v) for v in values.split(",")]
    except ValueError:
        parser.error(f"{flag}: {name} must be {kind.__name__}, received {values!r}")
    return name, typed if many else typed[0]


ALOE = Path(__file__).resolve().parent / "data" / "aloe"


def real_pairs():
    """Set A: Middlebury's Aloe (benchmarks/data/aloe) as `(left, right,
    truth)`, halved to about Motorcycle's size: 2x2 boxes of the views, and
    of the truth where all four of its pixels are known (NaN elsewhere)."""
    from PIL import Image

    truth = np.asarray(Image.open(ALOE / "aloeGT.png"), np.float32)
    truth[truth == 0] = np.nan  # 0: unknown
    height, width = (n // 2 for n in truth.shape)
    blocks = truth[: 2 * height, : 2 * width].reshape(height, 2, width, 2)
    views = [
        np.asarray(Image.open(ALOE / name).convert("RGB").resize((width, height), Image.BOX))
        for name in ("aloeL.jpg", "aloeR.jpg")
    ]
    return [(*views, blocks.mean(axis=(1, 3)) / 2)]


def rates(matcher, cases):
    from kerazoo.stereo import bad_pixel_rate

    per_pair = []
    for views, volume, truth in cases:
        disparity, _ = matcher.match(volume, *views)
        per_pair.append([bad_pixel_rate(disparity, truth, n) for n in (1, 2, 4)])
    return [round(float(x), 4) for x in np.mean(per_pair, axis=0)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="+", default=["stereo"], help="stereo or .weights.h5")
    parser.add_argument(
        "--quality", nargs="+", default=["fast"], help="each --weights' network (one: all)"
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=list(TUNING_SEEDS), help="generated tuning pairs"
    )
    parser.add_argument(
        "--p1", type=float, nargs="+", default=[None], help="SGM's P1 values (the network's)"
    )
    parser.add_argument(
        "--p2", type=float, nargs="+", default=[None], help="SGM's P2 values (the network's)"
    )
    parser.add_argument(
        "--max-cost",
        type=float,
        nargs="+",
        default=[None],
        help="where the cost is truncated (the network's; 2: nowhere)",
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=V1,V2",
        help="another matching setting of StereoMatcher to grid over ('none': None)",
    )
    parser.add_argument(
        "--photo-pairs", type=int, default=TUNING_PHOTO_PAIRS, help="set P's pairs (0: none)"
    )
    parser.add_argument("--no-real", action="store_true", help="leave out set A (Aloe)")
    _results.add_arguments(parser)
    args = parser.parse_args()
    if any(value is not None and not value > 0 for value in args.max_cost):
        parser.error(f"--max-cost: must be > 0, received {args.max_cost}")
    extra = dict(
        parse_setting(parser, "--setting", MATCHING_SETTINGS, text, many=True)
        for text in args.setting
    )
    plain, cameras = tuning_pairs(parser, args.seeds)
    photos = photo_pairs(args.photo_pairs)
    real = [] if args.no_real else real_pairs()
    qualities = args.quality * len(args.weights) if len(args.quality) == 1 else args.quality
    if len(qualities) != len(args.weights):
        parser.error("give one --quality, or one for each --weights")
    rows = []
    for weights, quality in zip(args.weights, qualities):
        matcher, label = matcher_for(weights, quality)
        cases = [volumes(matcher, pairs) for pairs in (plain, cameras, photos, real)]
        tuned = matcher.p1, matcher.p2, matcher.max_cost
        grid = itertools.product(args.p1, args.p2, args.max_cost, *extra.values())
        for p1, p2, max_cost, *others in grid:
            matcher.p1 = tuned[0] if p1 is None else p1
            matcher.p2 = tuned[1] if p2 is None else p2
            matcher.max_cost = tuned[2] if max_cost is None else max_cost
            for name, value in zip(extra, others):
                setattr(matcher, name, value)
            rows.append(
                {
                    "weights": label,
                    "quality": matcher.quality,
                    "p1": matcher.p1,
                    "p2": matcher.p2,
                    "max_cost": matcher.max_cost,
                    **dict(zip(extra, others)),
                    "T": rates(matcher, cases[0]),
                    "T_cameras": rates(matcher, cases[1]),
                    **({"P": rates(matcher, cases[2])} if photos else {}),
                    **({"A": rates(matcher, cases[3])} if real else {}),
                }
            )
        print(f"done {weights}", file=sys.stderr, flush=True)
    lines = [
        "| weights | quality | P1 / P2 | max cost | "
        + "".join(f"{name} | " for name in extra)
        + "T bad-1 / 2 / 4 | T' (camera differences) bad-1 / 2 / 4 | P (photos) bad-1 / 2 / 4 "
        "| A (Aloe) bad-1 / 2 / 4 |",
        "|---|---|---|---|" + "---|" * len(extra) + "---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['weights']} | {r['quality']} | {r['p1']} / {r['p2']} | {r['max_cost']} | "
            + "".join(f"{r[name]} | " for name in extra)
            + f"{' / '.join(f'{x:.4f}' for x in r['T'])} | "
            f"{' / '.join(f'{x:.4f}' for x in r['T_cameras'])} | "
            f"{' / '.join(f'{x:.4f}' for x in r.get('P', [])) or '-'} | "
            f"{' / '.join(f'{x:.4f}' for x in r.get('A', [])) or '-'} |"
        )
    print("\n".join(lines))
    _results.write(
        "stereo_weights",
        {
            "tuning_seeds": args.seeds,
            "photo_pairs": args.photo_pairs,
            "real_pairs": ["Aloe (half size)"] if real else [],
            "rows": rows,
        },
        args.refresh,
    )


if __name__ == "__main__":
    main()
