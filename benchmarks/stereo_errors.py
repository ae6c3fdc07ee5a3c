"""Where the stereo matcher's errors are, on generated tuning pairs only.

    python benchmarks/stereo_errors.py [--quality fast accurate] [--seeds 11 ...]
        [--photo-pairs 24] [--refresh]

Each known pixel of the truth is put in one class by what the truth says it
is: out of view (its match would lie left of the right image), occluded
(a nearer surface hides its match), at a depth edge (its 5x5 neighbourhood
spans more than 1 px of disparity), or elsewhere. For each network, on the
tuning pairs as generated (T), as two different cameras take them (T'),
and the training photos warped onto generated scenes (P,
`tuning_photo_pair`: real textures), the table gives each class's share of
the pixels, the densified bad-2 within it, and what it adds to the pair's
bad-2 (the shares of the total).
A network can only improve what it matches: the last two classes; the
first two are left to the fill. Results to
benchmarks/results/stereo_errors.json (with --refresh, else
benchmarks/out/), and a figure of the first pair's classes and errors.

Tuning pairs only (seeds 11-16 by default; never the held-out 101-103 or
Motorcycle).
"""

import argparse
import os

import numpy as np
from stereo_weights import (  # beside this script
    TUNING_PHOTO_PAIRS,
    TUNING_SEEDS,
    photo_pairs,
    tuning_pairs,
)

import _results  # benchmarks/_results.py: the script's folder is on sys.path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
CLASSES = ("out of view", "occluded", "depth edge", "elsewhere")
EDGE_SPAN_PX = 1.0  # a 5x5 neighbourhood spanning more is at a depth edge
OCCLUDED_BY_PX = 0.75  # a nearer surface this much nearer on the match hides it
# The figure's colours: gray levels are the truth; a class, then errors, over them.
COLOURS = {"out of view": (0, 120, 0), "occluded": (0, 0, 160), "bad-2": (255, 0, 0)}


def classes(truth):
    """`{class: bool (h, w)}`, one class per known pixel of `truth`."""
    height, width = truth.shape
    known = np.isfinite(truth)
    d = np.where(known, truth, -1.0)
    x = np.arange(width)
    target = np.round(x[None] - d).astype(int)
    in_view = known & (target >= 0) & (target < width)  # < width: a negative disparity
    # A z-buffer of the right view: the nearest disparity landing on each column.
    nearest = np.full((height, width), -np.inf)
    rows = np.broadcast_to(np.arange(height)[:, None], (height, width))
    np.maximum.at(nearest, (rows[in_view], target[in_view]), d[in_view])
    hidden = np.zeros_like(known)
    hidden[in_view] = d[in_view] < nearest[rows[in_view], target[in_view]] - OCCLUDED_BY_PX
    padded = np.pad(np.where(known, truth, 0.0), 2, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (5, 5))
    span = windows.max(axis=(-2, -1)) - windows.min(axis=(-2, -1))
    out_of_view = known & ~in_view
    edge = known & in_view & ~hidden & (span > EDGE_SPAN_PX)
    return {
        "out of view": out_of_view,
        "occluded": hidden,
        "depth edge": edge,
        "elsewhere": known & in_view & ~hidden & ~edge,
    }


def figure(truth, disparity, masks, path):
    """The truth in grey, out-of-view and occluded pixels coloured, bad-2 in red."""
    from PIL import Image

    grey = (np.clip(np.nan_to_num(truth) / np.nanmax(truth), 0, 1) * 255).astype(np.uint8)
    image = np.repeat(grey[..., None], 3, axis=-1)
    for name in ("out of view", "occluded"):
        image[masks[name]] = COLOURS[name]
    bad = np.isfinite(truth) & ~(np.abs(np.nan_to_num(disparity, nan=-1e9) - truth) <= 2)
    image[bad] = COLOURS["bad-2"]
    tmp = path.with_name(f".{path.name}.tmp.png")
    Image.fromarray(image).save(tmp)
    tmp.replace(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quality", nargs="+", default=["fast", "accurate"])
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=list(TUNING_SEEDS), help="generated tuning pairs"
    )
    parser.add_argument(
        "--photo-pairs", type=int, default=TUNING_PHOTO_PAIRS, help="set P's pairs (0: none)"
    )
    _results.add_arguments(parser)
    args = parser.parse_args()
    plain, cameras = tuning_pairs(parser, args.seeds)
    photos = photo_pairs(args.photo_pairs)

    from kerazoo.stereo import StereoMatcher

    pairs = []
    for seed, (left, right, truth), taken in zip(args.seeds, plain, cameras):
        masks = classes(truth)
        pairs.append(("T", seed, left, right, truth, masks))
        pairs.append(("T'", seed, *taken[:2], truth, masks))
    for index, (left, right, truth) in enumerate(photos):
        pairs.append(("P", index, left, right, truth, classes(truth)))
    rows = []
    for quality in args.quality:
        matcher = StereoMatcher(
            quality=quality, runtime="keras", precision="float32", check_swapped=False
        )
        counts = {}  # (set, class) -> [bad pixels, class pixels, known pixels]
        for name, seed, left, right, truth, masks in pairs:
            disparity = matcher.compute(left, right).disparity
            known = np.isfinite(truth)
            bad = known & ~(np.abs(np.nan_to_num(disparity, nan=-1e9) - truth) <= 2)
            for cls, mask in masks.items():
                c = counts.setdefault((name, cls), [0, 0, 0])
                c[0] += int(bad[mask].sum())
                c[1] += int(mask.sum())
                c[2] += int(known.sum())
            if name == "T" and seed == args.seeds[0]:
                out = _results.COMMITTED if args.refresh else _results.LOCAL
                out.mkdir(parents=True, exist_ok=True)
                figure(truth, disparity, masks, out / f"stereo_errors_{quality}_seed{seed}.png")
        for (name, cls), (bad, pixels, known) in counts.items():
            rows.append(
                {
                    "quality": quality,
                    "set": name,
                    "class": cls,
                    "share_of_pixels": round(pixels / known, 4),
                    "bad2_within": round(bad / max(pixels, 1), 4),
                    "adds_to_bad2": round(bad / known, 4),
                }
            )
    lines = [
        "| network | set | class | share of pixels | bad-2 within | adds to bad-2 |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['quality']} | {r['set']} | {r['class']} | {r['share_of_pixels']:.3f} | "
            f"{r['bad2_within']:.3f} | {r['adds_to_bad2']:.4f} |"
        )
    print("\n".join(lines))
    _results.write(
        "stereo_errors",
        {"seeds": args.seeds, "photo_pairs": args.photo_pairs, "rows": rows},
        args.refresh,
    )


if __name__ == "__main__":
    main()
