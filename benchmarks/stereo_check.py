"""The held-out check of candidate matching settings: the shipped setting
and each candidate on every held-out pair and set, in one run.

    python benchmarks/stereo_check.py --quality fast
        --candidate p1=1.2,p2=14.4,max_cost=0.7 [--candidate ...]
        [--candidate-weights CHECKPOINT] [--note "why these"] [--refresh]
                                                   (about 4 minutes, 2 cores)

A candidate is chosen on the tuning sets (`stereo_weights.py`); this script
is the one look at the held-out data that decides whether it ships: the
Middlebury Motorcycle, the shipped pair, generated pairs 101-103, and the
means of R' and L (`stereo_sets.py`). Each pair's correlation is computed
once; every setting matches it, unfilled, and is densified and scored as
`benchmarks/stereo.py` does, so the shipped row equals that benchmark's.

Every look at held-out data spends some of its independence, so with
`--refresh` a check is appended to benchmarks/results/stereo_checks.json,
never overwritten: the file is the log of every held-out check made.
A candidate names `StereoMatcher` attributes (`p1`, `p2`, `max_cost`, or
any of `stereo_weights.MATCHING_SETTINGS`); `none` is None. A candidate
fill (`fill_*`) densifies that column's maps: the benchmark densifies
every method with one fill, so a fill that ships changes it for all.
With `--candidate-weights` (a `.weights.h5` of the quality's network, or a
training checkpoint's folder), the candidates are matched with that
network, run as `stereo_weights.py` runs it (Keras, float32; a checkpoint
trained on the census blend at its own census weight), the shipped row
with the shipped one as the benchmark runs it; without `--candidate`, one
candidate row has the shipped settings. Each pair's correlation is then
computed twice: about twice the time.
"""

import argparse
import json
import os
import sys

import numpy as np
import stereo  # benchmarks/stereo.py: the pairs, the fill and the scoring
import stereo_sets
from stereo_weights import MATCHING_SETTINGS, matcher_for, parse_setting

import _results  # benchmarks/_results.py: the script's folder is on sys.path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SETTINGS = {"p1": float, "p2": float, "max_cost": float, **MATCHING_SETTINGS}


def candidate(parser, text):
    """`{name: value}` from `NAME=VALUE,NAME=VALUE`."""
    return dict(
        parse_setting(parser, "--candidate", SETTINGS, item, many=False) for item in text.split(",")
    )


def densify(disparity, left, matcher):
    """`kerazoo.stereo.densify` with the matcher's fill settings: the shipped
    ones are its defaults, so the shipped column is the benchmark's."""
    from kerazoo.stereo import matching

    fill = {
        name.removeprefix("fill_"): getattr(matcher, name)
        for name in SETTINGS
        if name.startswith("fill_")
    }
    return matching.median3(matching.fill_occlusions(disparity, left, **fill))


def candidate_matcher(parser, path, quality):
    """`(StereoMatcher, label)` of `--candidate-weights`, unfilled; `parser`
    refuses a path that holds no network of `quality`."""
    from kerazoo.errors import ParameterError

    try:
        other, label = matcher_for(path, quality)
    except (ParameterError, OSError, ValueError) as e:
        parser.error(f"--candidate-weights: {e}, received {path!r}")
    if other.quality != quality:
        parser.error(f"--candidate-weights: a {other.quality} network, with --quality {quality}")
    other.fill, other.max_pixels = False, None
    return other, label


def held_out_groups():
    """`{row name: [pairs]}`: each benchmark pair alone, then R' and L."""
    groups = {pair.name: [pair] for pair in stereo.evaluation_pairs()}
    for name in stereo_sets.SETS:
        groups[f"{name} mean"] = stereo_sets.evaluation_set(name)
    return groups


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", default="fast", choices=("fast", "accurate"))
    parser.add_argument(
        "--candidate", action="append", default=[], metavar="NAME=VALUE,...", help="a setting"
    )
    parser.add_argument(
        "--candidate-weights",
        metavar="PATH",
        help="the network the candidates match with (.weights.h5 or a checkpoint folder)",
    )
    parser.add_argument("--note", default="", help="why these candidates (kept in the log)")
    _results.add_arguments(parser)
    args = parser.parse_args()
    if not args.candidate and not args.candidate_weights:
        parser.error("give --candidate, --candidate-weights or both")
    candidates = [candidate(parser, text) for text in args.candidate] or [{}]

    from kerazoo.stereo import StereoMatcher, prepare_pair

    matcher = StereoMatcher(fill=False, max_pixels=None, check_swapped=False, quality=args.quality)
    shipped = {name: getattr(matcher, name) for name in SETTINGS}
    other, label = matcher, None
    if args.candidate_weights:
        other, label = candidate_matcher(parser, args.candidate_weights, args.quality)
    # A candidate changes its network's own settings: a checkpoint trained on
    # the census blend keeps the weight it was trained with.
    own = {name: getattr(other, name) for name in SETTINGS}
    settings = [{}] + candidates  # the shipped setting first
    rates = [{} for _ in settings]
    for group, pairs in held_out_groups().items():
        per_setting = [[] for _ in settings]
        for pair in pairs:
            views = prepare_pair(pair.left, pair.right)
            volume = matcher.correlate(*views, pair.max_disparity)
            if other is not matcher:
                other_volume = other.correlate(*views, pair.max_disparity)
            else:
                other_volume = volume
            for index, changes in enumerate(settings):
                network, scores, base = (
                    (matcher, volume, shipped) if index == 0 else (other, other_volume, own)
                )
                for name, value in {**base, **changes}.items():
                    setattr(network, name, value)
                disparity, _ = network.match(scores, *views)
                scored = stereo.scores(densify(disparity, pair.left, network), pair.disparity)
                per_setting[index].append([scored[f"bad{n}"] for n in stereo.THRESHOLDS])
        for index, values in enumerate(per_setting):
            rates[index][group] = [round(float(x), 4) for x in np.mean(values, axis=0)]
        print(f"done {group}", file=sys.stderr, flush=True)

    names = args.candidate or ["shipped settings"]
    if label:
        names = [f"{name}, {label}" for name in names]
    lines = ["| pair or set | " + " | ".join(["shipped"] + names) + " |"]
    lines.append("|---|" + "---|" * len(settings))
    for group in rates[0]:
        cells = [" / ".join(f"{x:.4f}" for x in r[group]) for r in rates]
        lines.append(f"| {group} (bad-1 / 2 / 4) | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    check = {
        "quality": args.quality,
        "note": args.note,
        "shipped": shipped,
        **({"candidate_weights": label} if label else {}),
        "rows": [
            {
                "setting": changes or "shipped",
                "weights": label if index and label else "shipped",
                "rates": r,
            }
            for index, (changes, r) in enumerate(zip(settings, rates))
        ],
    }
    log = _results.COMMITTED / "stereo_checks.json"
    checks = json.loads(log.read_text())["checks"] if args.refresh and log.is_file() else []
    _results.write("stereo_checks", {"checks": checks + [check]}, args.refresh)


if __name__ == "__main__":
    main()
