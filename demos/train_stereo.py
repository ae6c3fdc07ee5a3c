"""Trains the stereo demo's shared features and ships them in weights/.

    python demos/train_stereo.py [--crops 2000] [--epochs 7] [--seed 0]

The trained network is the one the demo shares between its two cameras:
Xception's first layers up to its stride-2 features (`block2_sepconv2_bn`,
47,008 weights) inside a `StereoXception`. It trains in Xception's own
geometry (stride 2: 4x fewer pixels to compute), and the demo runs the same
weights atrous, at full resolution (`kerazoo.app.models.stereo.xception_stem`):
the atrous network computes the strided one's features at every pixel
offset, so nothing is lost but the stride. It learns to match: the
correlation of left and right features over the disparity range goes through
a softmax and is scored by cross-entropy at the true disparity (MC-CNN's idea,
Zbontar & LeCun 2016; Luo et al. 2016), on generated scenes with exact ground
truth (`kerazoo.app.demos.stereo_scenes`: photo, noise, stripe and flat
textures; slanted, curved and thin surfaces; occlusions; gain, gamma, blur and
noise differences between the views). It starts from ImageNet weights when
they are on this machine, else from scratch.

Fixed seeds; on 2 CPU cores the defaults take about 20 minutes. Held-out
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

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS_FILE = "stereo_xception_stem.weights.h5"
CROP = (64, 256)  # height, width of a training pair
MAX_DISPARITY = 64  # image pixels; the loss sees half of it on the stride-2 grid
FEATURE_MAX_DISPARITY = MAX_DISPARITY // 2
VALIDATION_SEED = 50_000  # generated validation crops: never trained on


def wta_within_1px(y_true, y_pred):
    """Share of known pixels whose best-scoring disparity is within 1 px."""
    from keras import ops

    truth = y_true[..., 0]
    valid = (truth >= 0) & (truth <= FEATURE_MAX_DISPARITY)
    best = ops.cast(ops.argmax(y_pred, axis=-1), truth.dtype)
    hit = ops.cast(valid & (ops.abs(best - truth) <= 1.0), "float32")
    return ops.sum(hit) / (ops.sum(ops.cast(valid, "float32")) + 1.0)


def to_feature_grid(disparity, feature_shape):
    """Image-pixel truth -> Xception's stride-2 grid: feature (i, j) sits on
    image pixel (2i + 3, 2j + 3) (two unpadded 3x3 convolutions), and a
    disparity of d image pixels is d / 2 feature pixels."""
    h, w = feature_shape
    grid = disparity[:, 3:3 + 2 * h:2, 3:3 + 2 * w:2]
    return np.where(grid >= 0, grid / 2, -1.0).astype("float32")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crops", type=int, default=2000, help="training pairs generated")
    parser.add_argument("--epochs", type=int, default=7)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "weights" / WEIGHTS_FILE))
    parser.add_argument("--no-manifest", action="store_true",
                        help="do not record the file in weights/manifest.json")
    args = parser.parse_args()

    import keras

    from kerazoo import weights
    from kerazoo.app.demos.stereo_scenes import training_set
    from kerazoo.app.models.stereo import (build_matching_model, copy_xception_weights,
                                           matching_loss, xception_stem)

    keras.utils.set_random_seed(args.seed)
    start = time.perf_counter()
    x_left, x_right, y = training_set(args.crops, *CROP, MAX_DISPARITY, seed=args.seed)
    v_left, v_right, v_y = training_set(max(64, args.crops // 16), *CROP, MAX_DISPARITY,
                                        seed=VALIDATION_SEED)
    generated_s = time.perf_counter() - start
    print(f"generated {len(y)} training and {len(v_y)} validation pairs in {generated_s:.0f} s",
          flush=True)

    stem = xception_stem(atrous=False)
    init = "scratch"
    try:
        path = weights.resolve("xception_notop", download=False)
        from kerazoo import backbones

        copy_xception_weights(stem, backbones.xception(weights=path,
                                                      include_preprocessing=False))
        init = "imagenet"
    except weights.WeightsError:
        print("ImageNet Xception weights not on this machine: training from scratch",
              flush=True)
    model = build_matching_model(FEATURE_MAX_DISPARITY, stem=stem, trainable=True,
                                 input_shape=CROP + (3,))
    feature_shape = tuple(model.output_shape[1:3])
    y, v_y = to_feature_grid(y, feature_shape), to_feature_grid(v_y, feature_shape)
    steps = args.epochs * (len(y) // args.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, steps, alpha=0.05)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=matching_loss(),
                  metrics=[wta_within_1px])
    history = model.fit([x_left, x_right], y, batch_size=args.batch_size, epochs=args.epochs,
                        validation_data=([v_left, v_right], v_y), shuffle=True, verbose=2)
    train_s = time.perf_counter() - start - generated_s

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.weights.h5")
    stem.save_weights(tmp)
    tmp.replace(out)
    log = {"init": init, "crops": len(y), "crop": list(CROP), "epochs": args.epochs,
           "batch_size": args.batch_size, "seed": args.seed, "params": stem.count_params(),
           "seconds": {"generate": round(generated_s, 1), "train": round(train_s, 1)},
           "history": {k: [round(float(v), 4) for v in vals]
                       for k, vals in history.history.items()},
           "keras_backend": keras.backend.backend(), "cpu_count": os.cpu_count()}
    if not args.no_manifest:
        manifest_path = ROOT / "weights" / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["files"]["stereo_xception_stem"] = {
            "file": out.name, "url": None,
            "hash": weights.file_hash(out, "sha256"), "hash_algorithm": "sha256",
            "approx_size_mb": round(out.stat().st_size / 1e6, 3),
            "architecture": "Xception up to block2_sepconv2_bn (stride-2 level), run atrous "
                            "at stride 1: kerazoo.app.models.stereo.xception_stem",
            "fingerprint": None, "trained_by": "demos/train_stereo.py",
            "result": {"validation_wta_within_1px": log["history"]
                       ["val_wta_within_1px"][-1], "init": init},
        }
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "stereo_training.json").write_text(json.dumps(log, indent=2) + "\n")
    print(json.dumps({k: log[k] for k in ("init", "crops", "epochs", "seconds")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
