"""Helpers shared by the demos: pretrained weights, training, plots."""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import numpy as np

from kerazoo._io import atomic_write, current_umask, temporary_prefix, tracked_temporary
from kerazoo.errors import InputError, ParameterError, WeightsError


def load_pretrained(model, name):
    """Loads the shipped weights `name` (sha256-verified through the manifest)
    into `model`. Returns the file's path."""
    from kerazoo import weights

    path = weights.resolve(name, download=False)
    weights.load_weights_quietly(model, path, f"the {name} model")
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
            return (
                None,
                "random",
                (f"WARNING: ImageNet {architecture} weights not available, {consequence}: {e}"),
            )
    if not Path(choice).is_file():
        raise ParameterError(
            "weights", f"{choice}: no such file (use auto, imagenet, none or a path)"
        )
    return Path(choice), str(choice), None


def fit(model, x, y, epochs, batch_size, quiet, validation_data=None):
    """model.fit with Keras's progress bar (on stderr under --json)."""
    is_dataset = y is None  # a tf.data.Dataset of (x, y): already batched and shuffled
    history = model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        shuffle=not is_dataset,
        validation_data=validation_data,
        verbose=0 if quiet else 2,
    )
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
    colours = [
        "#1f77b4",
        "#d62728",
        "#2ca02c",
        "#ff7f0e",
        "#9467bd",
        "#8c564b",
        "#17becf",
        "#e377c2",
    ]
    draw.text((pad, 10), title, fill="black", font=font)
    draw.rectangle([pad, pad, width - pad, height - pad], outline="#888888")
    for i, (name, values) in enumerate(sorted(history.items())):
        values = [v for v in values if math.isfinite(v)]
        if not values:
            continue
        lo, hi = min(values), max(values)
        span = (hi - lo) or 1.0
        n = max(len(values) - 1, 1)
        points = [
            (pad + (width - 2 * pad) * k / n, height - pad - (height - 2 * pad) * (v - lo) / span)
            for k, v in enumerate(values)
        ]
        colour = colours[i % len(colours)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        else:
            draw.ellipse(
                [points[0][0] - 2, points[0][1] - 2, points[0][0] + 2, points[0][1] + 2],
                fill=colour,
            )
        draw.text(
            (pad + 4, pad + 4 + 14 * i),
            f"{name}: {values[0]:.4g} -> {values[-1]:.4g}",
            fill=colour,
            font=font,
        )
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
            raise ParameterError(
                "loss_weights",
                f"expected NAME=NUMBER with NAME in {', '.join(names)}, got {part!r}",
            )
        try:
            weights[key] = float(value)
        except ValueError:
            raise ParameterError("loss_weights", f"{value!r} is not a number") from None
        if not math.isfinite(weights[key]) or weights[key] < 0:
            raise ParameterError("loss_weights", f"{key} must be a non-negative number")
    return weights


def rng(seed):
    return np.random.default_rng(seed)


def check_output(path, param, folder=False, expected=None):
    """Fails now, not after minutes of work, if `path` cannot be written:
    a folder (`folder=True`, an `output_set` that may hold only the names in
    `expected`) or a file to create or replace. Creates nothing: the folder
    the write happens in (the parent: sets and files are staged beside their
    target) is probed with a temporary folder, removed at once."""
    import tempfile

    if path is None:
        return
    path = Path(path).absolute()
    if folder and path.is_symlink():
        path = Path(os.path.realpath(path))
    if folder and path.exists() and not path.is_dir():
        raise ParameterError(param, f"{path} exists and is not a folder")
    if not folder and path.is_dir():
        raise ParameterError(param, f"{path} is a folder, not a file")
    if folder and os.path.ismount(path):
        raise ParameterError(param, f"{path} is a mount point: give a folder inside it")
    if folder and expected is not None and path.is_dir():
        _check_only_ours(path, expected, param)
    probe = path.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ParameterError(param, f"{path}: {probe} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".kerazoo-probe-", dir=probe))
    except OSError as e:
        raise ParameterError(
            param, f"{path}: cannot write in {probe} ({e.strerror or e})"
        ) from None


def _check_only_ours(folder, expected, param):
    foreign = sorted(p.name for p in folder.iterdir() if p.name not in expected)
    if foreign:
        raise ParameterError(
            param,
            f"{folder} holds other files ({', '.join(foreign[:3])}): "
            "give a new or empty folder, or one of earlier results",
        )


@contextlib.contextmanager
def output_set(out, expected):
    """Writes a set of files into `out` as one: yields a fresh hidden folder
    beside it; on success the finished folder replaces `out` by renames, so a
    reader finds the old set or the new one, never a mix. A second writer is
    refused while this one runs; leftovers of a killed run are cleaned first
    (an interrupted swap is rolled back). `out` may hold only files named in
    `expected`: anything else of the user's is never replaced."""
    import shutil
    import tempfile

    out = Path(out).absolute()
    if out.is_symlink():  # the set goes where the link leads; the link stays
        out = Path(os.path.realpath(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    # A rerun keeps the folder's permissions; a new one gets the umask's.
    mode = out.stat().st_mode & 0o7777 if out.is_dir() else 0o777 & ~current_umask()
    if out.exists():
        _check_only_ours(out, expected, "out")
    lock_path = out.parent / f".{out.name}.lock"
    lock = _lock(lock_path, out)
    try:
        _clean_leftovers(out)
        fresh = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
        try:
            with tracked_temporary(fresh):
                yield fresh
            os.chmod(fresh, mode)
            old = None
            if out.exists():
                old = out.parent / f".{out.name}.old-{fresh.name.rsplit('-', 1)[-1]}"
                os.rename(out, old)
            os.rename(fresh, out)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(fresh, ignore_errors=True)
            raise
    finally:
        # Removed while still held: a run that opened it meanwhile sees that
        # it is gone (`_lock`) and makes its own.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)
        os.close(lock)


def _clean_leftovers(out):
    """A killed run's leftovers beside `out`: a set killed between its two
    renames is rolled back (the previous results come back as `out`), the
    rest removed. The caller holds `out`'s lock."""
    import shutil

    for stale in out.parent.glob(f".{out.name}.old-*"):
        if not out.exists():
            os.rename(stale, out)
        else:
            shutil.rmtree(stale, ignore_errors=True)
    for stale in out.parent.glob(f".{out.name}.new-*"):
        shutil.rmtree(stale, ignore_errors=True)


def recover_output_set(out):
    """Before any work: the previous results of a run killed mid-swap are
    put back as `out` now, not only once a later run succeeds. Skipped when
    another run holds `out`."""
    out = Path(out).absolute()
    if not out.parent.is_dir() or not any(out.parent.glob(f".{out.name}.old-*")):
        return
    lock_path = out.parent / f".{out.name}.lock"
    try:
        lock = _lock(lock_path, out)
    except InputError:
        return  # another run is writing there: it cleans up itself
    try:
        _clean_leftovers(out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)
        os.close(lock)


def _lock(path, out):
    """An exclusive lock on the file `path` (created), or `InputError` if
    another run holds it. Retried when the holder removed the file between
    our open and our lock, so two runs never hold two different files."""
    import fcntl

    while True:
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(
                f"{out}: another kerazoo run is writing there; wait for it or choose another --out"
            ) from None
        try:
            current = os.stat(path).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            return fd
        os.close(fd)


def remove_stale_temporaries(path):
    """Removes `atomic_write`'s leftovers for `path` from a killed run."""
    path = Path(path)
    for stale in path.parent.glob(f"{temporary_prefix(path)}*{path.suffix}"):
        stale.unlink(missing_ok=True)
