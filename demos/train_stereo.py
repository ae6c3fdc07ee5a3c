"""Trains the stereo demo's shared features and ships them in weights/.

    python demos/train_stereo.py [--crops 2000] [--epochs 7] [--atrous-epochs 2] [--seed 0]

The trained network is the one the demo shares between its two cameras:
Xception's first layers up to its stride-2 features (`block2_sepconv2_bn`,
47,008 weights) inside a `StereoXception`. It trains in Xception's own
geometry (stride 2: 4x fewer pixels to compute), and the demo runs the same
weights atrous, at full resolution (`kerazoo.stereo.stem.xception_stem`):
the atrous network computes the strided one's features at every pixel
offset, so nothing is lost but the stride. Then a second, shorter phase
fine-tunes the same weights atrous, at full resolution with 1-px disparity
bins: the strided phase only ever compares features 2 px apart, and the
full-resolution map's sub-pixel accuracy (bad-1) needs neighbours told
apart. Both phases learn to match: the correlation of left and right
features over the disparity range goes through a softmax and is scored by
cross-entropy at the true disparity (MC-CNN's idea, Zbontar & LeCun 2016;
Luo et al. 2016), on generated scenes with exact ground
truth (`kerazoo.app.demos.stereo_scenes`: photo, noise, stripe and flat
textures; slanted, curved and thin surfaces; occlusions; gain, gamma, blur and
noise differences between the views). It starts from ImageNet weights when
they are on this machine, else from scratch.

Long training runs in segments that stop and resume (`--checkpoint-dir`,
`--resume`, `--hours`; `demos/stereo_segments.py`): the full-resolution
phase on a stream of scenes never seen twice, checkpointed as it goes.

    python demos/train_stereo.py --checkpoint-dir demos/checkpoints/stereo --hours 1
    python demos/train_stereo.py --checkpoint-dir demos/checkpoints/stereo --resume --hours 1

Fixed seeds; on 2 CPU cores the defaults take about 45 minutes. `--init
FILE` skips the strided phase and continues from saved stem weights (the
log then lists every run that made them, with its command). Held-out
numbers (generated pairs never trained or tuned on) go with the training log
to benchmarks/results/stereo_training.json; the weights, with their sha256,
to weights/ and weights/manifest.json.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from kerazoo.options import STEREO_QUALITIES

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
CROP = (64, 256)  # height, width of a training pair
ATROUS_CROP = (32, 256)  # full resolution costs 4x per pixel: fewer rows per pair
MAX_DISPARITY = 64  # image pixels; the loss sees half of it on the stride-2 grid
FEATURE_MAX_DISPARITY = MAX_DISPARITY // 2
VALIDATION_SEED = 50_000  # generated validation crops: never trained on


def wta_within_1px(max_disparity):
    """Metric: share of known pixels whose best-scoring disparity is within 1
    bin of the truth (bins of the grid the model matches on)."""
    from keras import ops

    def wta_within_1px(y_true, y_pred):
        truth = y_true[..., 0]
        valid = (truth >= 0) & (truth <= max_disparity)
        best = ops.cast(ops.argmax(y_pred, axis=-1), truth.dtype)
        hit = ops.cast(valid & (ops.abs(best - truth) <= 1.0), "float32")
        return ops.sum(hit) / (ops.sum(ops.cast(valid, "float32")) + 1.0)

    return wta_within_1px


def to_feature_grid(disparity, feature_shape):
    """Image-pixel truth -> Xception's stride-2 grid: feature (i, j) sits on
    image pixel (2i + 3, 2j + 3) (two unpadded 3x3 convolutions), and a
    disparity of d image pixels is d / 2 feature pixels."""
    h, w = feature_shape
    grid = disparity[:, 3 : 3 + 2 * h : 2, 3 : 3 + 2 * w : 2]
    return np.where(grid >= 0, grid / 2, -1.0).astype("float32")


def fit(model, data, validation, epochs, batch_size, learning_rate, max_disparity):
    """Adam with cosine decay over all steps, the matching loss, verbose logs."""
    import keras

    from kerazoo.losses import StereoMatchingLoss

    (x_left, x_right, y), (v_left, v_right, v_y) = data, validation
    steps = epochs * (len(y) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, alpha=0.05)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=StereoMatchingLoss(),
        metrics=[wta_within_1px(max_disparity)],
    )
    history = model.fit(
        [x_left, x_right],
        y,
        batch_size=batch_size,
        epochs=epochs,
        validation_data=([v_left, v_right], v_y),
        shuffle=True,
        verbose=2,
    )
    return {k: [round(float(v), 4) for v in vals] for k, vals in history.history.items()}


def generate(crops, crop, seed, clock):
    from kerazoo.app.demos.stereo_scenes import training_set

    data = training_set(crops, *crop, MAX_DISPARITY, seed=seed)
    validation = training_set(
        max(64, crops // 16), *crop, MAX_DISPARITY, seed=VALIDATION_SEED + seed
    )
    print(
        f"generated {crops} training and {len(validation[2])} validation {crop[0]}x"
        f"{crop[1]} pairs in {time.perf_counter() - clock:.0f} s",
        flush=True,
    )
    return data, validation


def train_in_segments(args):
    import stereo_segments  # beside this script

    log = None if args.no_record else ROOT / "benchmarks" / "results" / "stereo_training.json"
    stem, state = stereo_segments.run(args, wta_within_1px(args.max_disparity), log)
    if args.ship:
        out = Path(args.out)
        tmp = out.with_name(f".{out.name}.tmp.weights.h5")
        stem.save_weights(tmp)
        tmp.replace(out)
        curve = state["segments"][-1]["curve"]
        record_weights(
            out, curve[-1]["val_wta"], f"segments in {args.checkpoint_dir}", args.quality
        )
    return 0


def record_weights(out, validation_wta, init, quality="fast"):
    """The stem's manifest entry (sha256), then its ONNX graph."""
    from export_stereo_onnx import export, record

    from kerazoo.stereo.stem import STEREO_WEIGHTS_OF

    refine = ", then a residual block of two dilated SeparableConv2D(128)"
    architecture = (
        "Xception up to block2_sepconv2_bn (stride-2 level), run atrous at stride 1"
        + (refine if quality == "accurate" else "")
        + f": kerazoo.stereo.stem.xception_stem(quality={quality!r})"
    )
    record(
        STEREO_WEIGHTS_OF[quality],
        out,
        architecture=architecture,
        trained_by="demos/train_stereo.py",
        result={"validation_wta_within_1px": validation_wta, "init": init},
    )
    export(quality)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=2000, help="training pairs generated")
    parser.add_argument("--epochs", type=int, default=7, help="strided phase")
    parser.add_argument("--atrous-crops", type=int, default=1500)
    parser.add_argument("--atrous-epochs", type=int, default=2, help="full-resolution phase")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--init",
        help="stem weights (.weights.h5) to start the atrous phase "
        "from, skipping the strided phase",
    )
    parser.add_argument(
        "--out", help="the shipped weights file (default: the quality's, in weights/)"
    )
    segments = parser.add_argument_group("training in segments (demos/stereo_segments.py)")
    segments.add_argument("--checkpoint-dir", help="train in segments, checkpointed here")
    segments.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    segments.add_argument("--hours", type=float, help="this segment's time budget")
    segments.add_argument("--max-steps", type=int, help="this segment's step budget")
    segments.add_argument("--total-steps", type=int, default=20_000, help="the whole run's")
    segments.add_argument("--checkpoint-every", type=int, default=200, help="steps")
    segments.add_argument("--learning-rate", type=float, default=2e-4)
    segments.add_argument(
        "--edge-weight",
        type=float,
        default=0.0,
        help="the loss's extra weight of pixels at depth edges (StereoMatchingLoss)",
    )
    segments.add_argument("--max-disparity", type=int, default=MAX_DISPARITY)
    segments.add_argument("--atrous-crop", type=int, nargs=2, default=list(ATROUS_CROP))
    segments.add_argument("--validation-crops", type=int, default=128)
    segments.add_argument(
        "--quality",
        choices=STEREO_QUALITIES,
        default="fast",
        help="which network (kerazoo.stereo.stem.xception_stem)",
    )
    segments.add_argument(
        "--refine-dilations",
        type=int,
        nargs="+",
        help="the accurate stem's refining blocks, a dilation each "
        "(default: the quality's own; xception_stem's refine_dilations)",
    )
    segments.add_argument(
        "--plain-camera-differences",
        action="store_true",
        help="without the lenses' vignetting and JPEG compression",
    )
    segments.add_argument(
        "--photo-share",
        type=float,
        default=0.0,
        help="the share of scenes with photo crops on every surface (real "
        "textures: flat regions, repeated patterns); the rest mix noise, "
        "stripes, flat colours and photos",
    )
    segments.add_argument(
        "--census-weight",
        type=float,
        default=0.0,
        help="train on the correlation with the census's share W blended in, "
        "as StereoMatcher(census_weight=W) scores a match (it ships 0.4 "
        "fast, 0.5 accurate), so that the features learn what the census "
        "misses (0: the correlation alone)",
    )
    segments.add_argument(
        "--ship",
        action="store_true",
        help="after the segment, write the stem to --out and record it in the manifest",
    )
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="record nothing: neither weights/manifest.json nor the log "
        "in benchmarks/results (experiments)",
    )
    args = parser.parse_args()
    from kerazoo.errors import ParameterError
    from kerazoo.stereo.stem import check_refine_dilations

    try:
        check_refine_dilations(args.quality, args.refine_dilations)
    except ParameterError as e:
        parser.error(str(e))
    if not 0 <= args.photo_share <= 1:
        parser.error(f"--photo-share: must be in [0, 1], received {args.photo_share}")
    if not 0 <= args.census_weight < 1:
        parser.error(f"--census-weight: must be in [0, 1), received {args.census_weight}")
    if args.census_weight and not args.checkpoint_dir:
        parser.error("--census-weight: trains in segments only, give --checkpoint-dir")
    if args.census_weight and args.ship:
        from kerazoo.stereo.matcher import CENSUS_WEIGHTS

        # A network trained on one census share matches with that share.
        if args.census_weight != CENSUS_WEIGHTS[args.quality]:
            parser.error(
                f"--census-weight: the {args.quality} matcher blends "
                f"{CENSUS_WEIGHTS[args.quality]}, received {args.census_weight} with --ship"
            )
    if args.out is None:
        from kerazoo.stereo.stem import STEREO_WEIGHTS_OF

        args.out = str(ROOT / "weights" / f"{STEREO_WEIGHTS_OF[args.quality]}.weights.h5")
    if args.checkpoint_dir:
        return train_in_segments(args)

    import keras

    from kerazoo import weights
    from kerazoo.stereo.stem import build_matching_model, copy_xception_weights, xception_stem

    keras.utils.set_random_seed(args.seed)
    log = {
        "command": " ".join(["python", "demos/train_stereo.py"] + sys.argv[1:]),
        "crop": list(CROP),
        "atrous_crop": list(ATROUS_CROP),
        "crops": args.crops,
        "atrous_crops": args.atrous_crops,
        "epochs": args.epochs,
        "atrous_epochs": args.atrous_epochs,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "seconds": {},
        "history": {},
    }
    stem = xception_stem(atrous=False)
    if args.init:
        weights.load_weights_quietly(stem, args.init, "the stereo stem")
        log["init"] = Path(args.init).name
    else:
        log["init"] = "scratch"
        try:
            path = weights.resolve("xception_notop", download=False)
            from kerazoo import backbones

            copy_xception_weights(
                stem, backbones.xception(weights=path, include_preprocessing=False)
            )
            log["init"] = "imagenet"
        except weights.WeightsError:
            print(
                "ImageNet Xception weights not on this machine: training from scratch", flush=True
            )
        clock = time.perf_counter()
        (x_left, x_right, y), (v_left, v_right, v_y) = generate(args.crops, CROP, args.seed, clock)
        model = build_matching_model(
            FEATURE_MAX_DISPARITY, stem=stem, trainable=True, input_shape=CROP + (3,)
        )
        feature_shape = tuple(model.output_shape[1:3])
        data = (x_left, x_right, to_feature_grid(y, feature_shape))
        validation = (v_left, v_right, to_feature_grid(v_y, feature_shape))
        log["history"]["strided"] = fit(
            model, data, validation, args.epochs, args.batch_size, 2e-3, FEATURE_MAX_DISPARITY
        )
        log["seconds"]["strided"] = round(time.perf_counter() - clock, 1)

    if args.atrous_epochs:
        # The same weights in the demo's geometry: feature (y, x) is image
        # pixel (y, x), so the truth needs no regridding; 1-px bins.
        clock = time.perf_counter()
        atrous = xception_stem(atrous=True)
        copy_xception_weights(atrous, stem)  # by layer name, as from ImageNet's
        data, validation = generate(args.atrous_crops, ATROUS_CROP, args.seed + 1, clock)
        model = build_matching_model(
            MAX_DISPARITY, stem=atrous, trainable=True, input_shape=ATROUS_CROP + (3,)
        )
        log["history"]["atrous"] = fit(
            model, data, validation, args.atrous_epochs, args.batch_size, 5e-4, MAX_DISPARITY
        )
        log["seconds"]["atrous"] = round(time.perf_counter() - clock, 1)
        stem = atrous
    log.update(
        params=stem.count_params(), keras_backend=keras.backend.backend(), cpu_count=os.cpu_count()
    )

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.weights.h5")
    stem.save_weights(tmp)
    tmp.replace(out)
    last = log["history"]["atrous" if args.atrous_epochs else "strided"]
    if not args.no_record:
        record_weights(out, last["val_wta_within_1px"][-1], log["init"])
        # A run that continues from saved weights (--init) appends to the
        # log of the runs that made them; a run from scratch starts it anew.
        log_path = ROOT / "benchmarks" / "results" / "stereo_training.json"
        runs = []
        if args.init and log_path.is_file():
            previous = json.loads(log_path.read_text())
            runs = previous.get("runs", [previous])
        log_path.write_text(json.dumps({"runs": runs + [log]}, indent=2) + "\n")
    print(
        json.dumps({k: log[k] for k in ("init", "crops", "epochs", "atrous_epochs", "seconds")}),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
