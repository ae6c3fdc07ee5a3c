"""Training the stereo stem in segments that stop and resume.

`demos/train_stereo.py --checkpoint-dir DIR` runs here. A training that
takes many hours runs as segments, on one machine or several: each segment
resumes from DIR's checkpoint, trains for `--hours` (or `--max-steps`), and
leaves a new checkpoint, written as one set (a temporary folder renamed into
place), so a segment killed at any moment loses at most the steps since the
last one.

A checkpoint is the stem's weights, the optimizer's state (its step count,
so the learning-rate schedule continues where it was) and `state.json`: the
step, the settings, and every segment's log with its validation curve. The
data needs no position of its own: batch `step` is generated from
`(seed, step)`, so a resumed run sees the batches an uninterrupted one would
have, and every batch is a scene never seen before.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import sys
import threading
import time
from pathlib import Path

import numpy as np

STATE = "state.json"
WEIGHTS = "stem.weights.h5"
OPTIMIZER = "optimizer.npz"


def batch(seed, step, batch_size, crop, max_disparity, harder, photo_share=0.0,
          census_weight=0.0):  # fmt: skip
    """Batch `step` of the stream: `([left, right], disparity)`, the same
    for the same `(seed, step)` on any machine; with a `census_weight`,
    `([left, right, census], disparity)` (`census_scores`)."""
    from kerazoo.app.demos.stereo_scenes import training_set

    left, right, truth = training_set(
        batch_size, *crop, max_disparity, seed=[seed, step], lens_and_codec=harder,
        photo_share=photo_share,
    )  # fmt: skip
    if census_weight:
        return [left, right, census_scores(left, right, max_disparity, census_weight)], truth
    return [left, right], truth


def census_scores(left, right, max_disparity, weight):
    """`(batch, h, w, max_disparity + 1)`: `weight` times the census
    similarity of each pair's grey views, as the matcher blends it in
    (`kerazoo.stereo.matching.blend_census`), and 0 where the match falls
    outside the right view. There the matcher replaces the score by a
    neutral one after the blend; in training such a bin keeps `(1 -
    weight)` times the correlation with the padding, too low to matter."""
    from kerazoo.stereo import matching

    volumes = np.zeros(left.shape[:3] + (max_disparity + 1,), np.float32)
    for volume, l_view, r_view in zip(volumes, left, right):
        grey = [np.asarray(view, np.float32).mean(axis=-1) for view in (l_view, r_view)]
        matching.blend_census(volume, *grey, weight)
    return volumes


def blended_model(matching_model, crop, max_disparity, census_weight):
    """The matching model with the census blended into its correlation, as
    the matcher scores a match inside the right view: `(1 - w) * cosine +
    census_scores`, so that the features learn what the census misses.
    Keras layers only: the training model needs no Lambda either."""
    import keras

    census = keras.Input(tuple(crop) + (max_disparity + 1,), name="census")
    learned = keras.layers.Rescaling(1.0 - census_weight, name="learned_share")(
        matching_model.output
    )
    blended = keras.layers.Add(name="blended")([learned, census])
    return keras.Model(matching_model.inputs + [census], blended, name="census_blended")


def prefetched(first_step, last_step, make):
    """Yields `(step, make(step))` for `first_step`..`last_step - 1`, making
    the next batch in a thread while the current one trains."""
    ready = queue.Queue(maxsize=2)

    def producer():
        for step in range(first_step, last_step):
            ready.put((step, make(step)))
        ready.put(None)

    threading.Thread(target=producer, daemon=True).start()
    while (item := ready.get()) is not None:
        yield item


def save(folder, stem, optimizer, state):
    """Writes the checkpoint as one set: a temporary folder beside `folder`,
    then renamed into place."""
    import keras

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    stem.save_weights(staging / WEIGHTS)
    arrays = {f"v{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(optimizer.variables)}
    np.savez(staging / OPTIMIZER, **arrays)
    (staging / STATE).write_text(json.dumps(state, indent=2) + "\n")
    previous = folder.with_name(f".{folder.name}.previous")
    shutil.rmtree(previous, ignore_errors=True)
    if folder.exists():
        folder.rename(previous)
    staging.rename(folder)
    shutil.rmtree(previous, ignore_errors=True)


def restore(folder, stem, model, optimizer):
    """Loads the weights and the optimizer's state; returns the state."""
    folder = Path(folder)
    stem.load_weights(folder / WEIGHTS)
    optimizer.build(model.trainable_variables)
    with np.load(folder / OPTIMIZER) as saved:
        arrays = [saved[f"v{i}"] for i in range(len(saved.files))]
    if len(arrays) != len(optimizer.variables):
        raise SystemExit(f"{folder}: the optimizer state does not fit this model")
    for variable, value in zip(optimizer.variables, arrays):
        variable.assign(value)
    return json.loads((folder / STATE).read_text())


def validate(model, validation, batch_size):
    views, truth = validation
    loss, wta = model.evaluate(views, truth, batch_size=batch_size, verbose=0)
    return round(float(loss), 4), round(float(wta), 4)


def run(args, wta_metric, log_path=None):
    """One segment: resume from `args.checkpoint_dir` (`--resume`) or start
    from the shipped weights, train until the budget, checkpoint on the way."""
    import keras

    from kerazoo.losses import StereoMatchingLoss
    from kerazoo.stereo.stem import (
        build_matching_model,
        check_refine_dilations,
        copy_xception_weights,
        load_stem,
        xception_stem,
    )

    folder = Path(args.checkpoint_dir)
    crop = tuple(args.atrous_crop)
    dilations = check_refine_dilations(args.quality, args.refine_dilations)
    settings = {
        "seed": args.seed,
        "batch_size": args.batch_size,
        "crop": list(crop),
        "max_disparity": args.max_disparity,
        "learning_rate": args.learning_rate,
        "total_steps": args.total_steps,
        "harder_camera_differences": not args.plain_camera_differences,
        "init": str(args.init or "the shipped stereo weights"),
        "quality": args.quality,
        "edge_weight": args.edge_weight,
        "refine_dilations": list(dilations),
        "photo_share": args.photo_share,
        "census_weight": args.census_weight,
    }
    # It starts from --init (a stem of the quality's own network) or the
    # shipped fast stem; refining blocks they lack are the identity until
    # they learn.
    source = load_stem(args.init, args.quality)[0] if args.init else load_stem("stereo")[0]
    stem = xception_stem(quality=args.quality, refine_dilations=dilations)
    copy_xception_weights(stem, source)
    model = build_matching_model(
        args.max_disparity, stem=stem, trainable=True, input_shape=crop + (3,)
    )
    if args.census_weight:
        model = blended_model(model, crop, args.max_disparity, args.census_weight)
    schedule = keras.optimizers.schedules.CosineDecay(
        args.learning_rate, args.total_steps, alpha=0.05
    )
    optimizer = keras.optimizers.Adam(schedule)
    model.compile(
        optimizer=optimizer,
        loss=StereoMatchingLoss(edge_weight=args.edge_weight),
        metrics=[wta_metric],
    )
    if args.resume:
        if not (folder / STATE).is_file():
            raise SystemExit(f"--resume: no checkpoint in {folder}")
        # The settings first: another network's weights would not even load.
        saved = json.loads((folder / STATE).read_text())["settings"]
        saved.setdefault("quality", "fast")  # checkpoints from before qualities
        saved.setdefault("edge_weight", 0.0)  # and from before edge weighting
        # and from before more refining blocks, when accurate had one
        saved.setdefault("refine_dilations", [1] if saved["quality"] == "accurate" else [])
        saved.setdefault("photo_share", 0.0)  # and from before photo-only scenes
        saved.setdefault("census_weight", 0.0)  # and from before the census blend
        if saved != settings:
            changed = sorted(k for k in settings if saved.get(k) != settings[k])
            raise SystemExit(f"--resume with other settings than the checkpoint's: {changed}")
        state = restore(folder, stem, model, optimizer)
        state["settings"] = saved
    else:
        if (folder / STATE).is_file():
            raise SystemExit(f"{folder} holds a checkpoint: --resume it, or choose another folder")
        state = {"settings": settings, "step": 0, "hours": 0.0, "segments": []}

    harder = settings["harder_camera_differences"]
    # Validation pairs from a seed range training never draws from.
    validation = batch(args.seed + 1_000_003, 0, args.validation_crops, crop,
                       args.max_disparity, harder, settings["photo_share"],
                       settings["census_weight"])  # fmt: skip
    segment = {
        "command": " ".join(["python", "demos/train_stereo.py"] + sys.argv[1:]),
        "machine": f"{os.cpu_count()} CPU cores, Keras backend {keras.backend.backend()}",
        "first_step": state["step"],
        "curve": [],
    }
    if state["step"] == 0:
        loss, wta = validate(model, validation, args.batch_size)
        segment["curve"].append({"step": 0, "hours": 0.0, "val_loss": loss, "val_wta": wta})
    start, hours_before = time.perf_counter(), state["hours"]
    last_step = state["step"] + args.max_steps if args.max_steps else args.total_steps
    last_step = min(last_step, args.total_steps)
    progress = keras.utils.Progbar(last_step - state["step"], stateful_metrics=["loss"])

    def make(step):
        return batch(args.seed, step, args.batch_size, crop, args.max_disparity, harder,
                     settings["photo_share"], settings["census_weight"])  # fmt: skip

    for step, (views, truth) in prefetched(state["step"], last_step, make):
        loss = model.train_on_batch(views, truth, return_dict=True)["loss"]
        progress.add(1, [("loss", float(loss))])
        state["step"] = step + 1
        elapsed_h = (time.perf_counter() - start) / 3600
        state["hours"] = round(hours_before + elapsed_h, 4)
        out_of_time = args.hours is not None and elapsed_h >= args.hours
        if state["step"] % args.checkpoint_every == 0 or out_of_time or step + 1 == last_step:
            loss, wta = validate(model, validation, args.batch_size)
            segment["curve"].append(
                {"step": state["step"], "hours": state["hours"], "val_loss": loss, "val_wta": wta}
            )
            segment["last_step"] = state["step"]
            segment["wall_s"] = round(time.perf_counter() - start, 1)
            save(folder, stem, optimizer, {**state, "segments": state["segments"] + [segment]})
        if out_of_time:
            break
    state["segments"].append(segment)
    if log_path is not None:
        _log(log_path, folder, state)
    print(json.dumps({"step": state["step"], "hours": state["hours"],
                      "last": segment["curve"][-1] if segment["curve"] else None}))  # fmt: skip
    return stem, state


def _log(log_path, folder, state):
    """The training log keeps this checkpoint's run with every segment."""
    log_path = Path(log_path)
    log = json.loads(log_path.read_text()) if log_path.is_file() else {"runs": []}
    root = Path(__file__).resolve().parents[1]
    name = folder.resolve()
    name = str(name.relative_to(root)) if name.is_relative_to(root) else str(folder)
    log.setdefault("segmented", {})[name] = state
    tmp = log_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(log, indent=2) + "\n")
    tmp.replace(log_path)
