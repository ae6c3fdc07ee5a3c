"""Helpers shared by the demos: pretrained weights, training, plots."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kerazoo._io import atomic_write
from kerazoo.errors import ParameterError, WeightsError, WeightsVerificationError


def load_pretrained(model, name):
    """Loads the shipped weights `name` (sha256-verified through the manifest)
    into `model`. Returns the file's path."""
    from kerazoo import weights

    path = weights.resolve(name, download=False)
    try:
        model.load_weights(str(path))
    except (ValueError, OSError, KeyError) as e:
        raise WeightsVerificationError(
            f"{path} does not fit the {name} model: {str(e).splitlines()[0][:200]}") from None
    return path


def choose_weights(choice, name, architecture, consequence):
    """A demo's `weights` choice, `auto|imagenet|none|PATH`, for manifest file `name`.

    Returns `(path or None, label for the summary, warning or None)`. The path
    is resolved and verified here, once: pass it on as the backbone's
    `weights`. `auto` is the ImageNet file if it is already on this machine
    (no download), else untrained with a warning that says `consequence`;
    `imagenet` resolves or downloads it and raises with the fix if it cannot;
    `none` is untrained; anything else is a path to your own file.
    """
    from kerazoo import weights

    if choice == "none":
        return None, "random", None
    if choice in ("auto", "imagenet"):
        try:
            return weights.resolve(name, download=(choice == "imagenet")), "imagenet", None
        except WeightsError as e:
            if choice == "imagenet":
                raise
            return None, "random", (
                f"WARNING: ImageNet {architecture} weights not available, {consequence}: {e}")
    if not Path(choice).is_file():
        raise ParameterError("weights", f"{choice}: no such file (use auto, imagenet, none "
                             "or a path)")
    return Path(choice), str(choice), None


def fit(model, x, y, epochs, batch_size, quiet, validation_data=None):
    """model.fit with Keras's progress bar (on stderr under --json)."""
    is_dataset = y is None  # a tf.data.Dataset of (x, y): already batched and shuffled
    history = model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=not is_dataset,
                        validation_data=validation_data, verbose=0 if quiet else 2)
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def plot_history(history, path, title):
    """Training curves as a PNG (Pillow only): one line per metric, each
    scaled to its own range, labelled with its first and last value."""
    from PIL import Image, ImageDraw, ImageFont

    width, height, pad = 640, 360, 48
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    try:
        font = ImageFont.load_default(size=12)
    except (TypeError, OSError):
        font = ImageFont.load_default()
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
               "#17becf", "#e377c2"]
    draw.text((pad, 10), title, fill="black", font=font)
    draw.rectangle([pad, pad, width - pad, height - pad], outline="#888888")
    for i, (name, values) in enumerate(sorted(history.items())):
        values = [v for v in values if math.isfinite(v)]
        if not values:
            continue
        lo, hi = min(values), max(values)
        span = (hi - lo) or 1.0
        n = max(len(values) - 1, 1)
        points = [(pad + (width - 2 * pad) * k / n,
                   height - pad - (height - 2 * pad) * (v - lo) / span)
                  for k, v in enumerate(values)]
        colour = colours[i % len(colours)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        else:
            draw.ellipse([points[0][0] - 2, points[0][1] - 2, points[0][0] + 2,
                          points[0][1] + 2], fill=colour)
        draw.text((pad + 4, pad + 4 + 14 * i),
                  f"{name}: {values[0]:.4g} -> {values[-1]:.4g}", fill=colour, font=font)
    draw.text((pad, height - pad + 8), "epoch ->", fill="black", font=font)
    atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))
    return Path(path)


def parse_loss_weights(text, names):
    """'age=0.25,income=1,gender=10' -> {'age': 0.25, ...}; unnamed keep 1."""
    weights = {n: 1.0 for n in names}
    if not text:
        return weights
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in weights:
            raise ParameterError("loss_weights", f"expected NAME=NUMBER with NAME in "
                                 f"{', '.join(names)}, got {part!r}")
        try:
            weights[key] = float(value)
        except ValueError:
            raise ParameterError("loss_weights", f"{value!r} is not a number") from None
        if not math.isfinite(weights[key]) or weights[key] < 0:
            raise ParameterError("loss_weights", f"{key} must be a non-negative number")
    return weights


def rng(seed):
    return np.random.default_rng(seed)
