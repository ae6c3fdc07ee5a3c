"""`kerazoo demo stereo LEFT RIGHT`: the stereo matcher (`kerazoo.stereo`)
on two image files, its figure, a view-similarity score, and depth.

The matching is the library's `StereoMatcher`; this module reads the files
(EXIF orientation applied, pairs above `MAX_PIXELS` decoded downscaled so
memory stays bounded), writes the output set (`disparity.npy`,
`disparity.png`, `summary.json`, and with a calibration `depth.npy` and
`points.ply`), and scores the similarity of the two views: the cosine of
their globally pooled features from the same shared stem.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np

from kerazoo._io import (
    atomic_write,
    image_header,
    read_image,
    read_image_rgb,
    resize_image,
    write_json,
    write_npy,
)
from kerazoo.app.demos.common import (
    check_output,
    output_set,
    recover_output_set,
    remove_stale_temporaries,
)
from kerazoo.errors import InputError, ParameterError, WeightsError

MAX_PIXELS = 1_000_000  # larger pairs are decoded downscaled to this many pixels
# ...and further where the correlation volume would exceed this: the peak
# memory holds two volumes and the features of one strip (under 3 GB, see
# benchmarks/results/stereo_memory.json).
MAX_VOLUME_BYTES = 400_000_000
MIN_SIDE = 71  # Xception's smallest input
SIMILARITY_SIDE = 224
# EXIF orientations that turn the stored image by 90 degrees, and their names.
_TURNED = {5: "transposed", 6: "rotated 90 degrees", 7: "transversed", 8: "rotated 270 degrees"}


class Stages:
    """Times each stage into `seconds`; tells `progress(name, seconds)` when a
    stage starts (`seconds` None) and when it ends. Prints nothing itself."""

    def __init__(self, progress=None):
        self.seconds = {}
        self.progress = progress or (lambda name, seconds: None)

    @contextlib.contextmanager
    def __call__(self, name):
        self.progress(name, None)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 3)
        self.progress(name, self.seconds[name])


def pixels_within_budget(pixels, max_disparity_px):
    """How many pixels a pair of `pixels` is matched at: at most `MAX_PIXELS`,
    and few enough that its correlation volume (pixels x disparities, both
    scaled alike) stays under `MAX_VOLUME_BYTES`, which bounds the peak
    memory: the matching holds two such volumes."""
    scale = min(1.0, (MAX_PIXELS / pixels) ** 0.5)

    def volume_bytes(s):
        return pixels * s * s * (max_disparity_px * s + 1) * 4

    low, high = 0.0, scale  # the volume grows with the scale: bisect
    if volume_bytes(high) > MAX_VOLUME_BYTES:
        for _ in range(40):
            middle = (low + high) / 2
            low, high = (
                (middle, high) if volume_bytes(middle) <= MAX_VOLUME_BYTES else (low, middle)
            )
        scale = low
    return max(MIN_SIDE * MIN_SIDE, int(pixels * scale * scale))


def default_max_disparity(width):
    """The disparity range searched by default: a quarter of the width."""
    return max(16, width // 4)


def load_pair(left_path, right_path, max_pixels=MAX_PIXELS, max_disparity_px=None):
    """Both views as arrays on their own scale (`read_image`: uint8, or
    float32 for deeper images), upright by their EXIF orientation, checked
    and, above `max_pixels` or the correlation volume's budget at
    `max_disparity_px` (default: `default_max_disparity`), decoded downscaled.

    Returns `(left, right, scale, original_size, orientations)`: `scale` <= 1
    is the factor applied, `original_size` the upright `(width, height)`,
    `orientations` the two files' EXIF orientations (1: upright).
    """
    headers = image_header(left_path), image_header(right_path)
    sizes = [(h, w) if o >= 5 else (w, h) for w, h, o in headers]
    orientations = [o for _, _, o in headers]
    if sizes[0] != sizes[1]:
        turned = [
            f"the {side} file's EXIF orientation: {_TURNED[o]}"
            for side, o in zip(("left", "right"), orientations)
            if o in _TURNED
        ]
        hint = f"; {' and '.join(turned)}" if turned else ""
        raise InputError(
            f"left and right views differ in size: {sizes[0][0]}x{sizes[0][1]} vs "
            f"{sizes[1][0]}x{sizes[1][1]} (a rectified pair has one size{hint})"
        )
    width, height = sizes[0]
    if min(height, width) < MIN_SIDE:
        raise InputError(
            f"images of {width}x{height} are too small for Xception "
            f"(each side must be at least {MIN_SIDE} pixels)"
        )
    if max_disparity_px is None:
        max_disparity_px = default_max_disparity(width)
    # Also few enough pixels that the correlation volume fits its budget.
    max_pixels = min(max_pixels, pixels_within_budget(height * width, max_disparity_px))
    scale, target = 1.0, None
    if height * width > max_pixels:
        scale = (max_pixels / (height * width)) ** 0.5
        target = (max(MIN_SIDE, int(width * scale)), max(MIN_SIDE, int(height * scale)))
    left, right = read_image(left_path, target), read_image(right_path, target)
    return left, right, scale, (width, height), orientations


def stereo_matcher(
    weights,
    max_disparity_px,
    fill,
    precision,
    progress=None,
    warn=None,
    runtime="auto",
    quality="fast",
):
    """The library's matcher for the command's `--weights` choice: `auto`
    (the shipped stereo-trained weights, else ImageNet's if on this machine,
    else random, each fallback said through `warn`), `stereo`, `imagenet`,
    `none` or a path; `runtime` and `quality` as `StereoMatcher`'s (a
    fallback runs Keras)."""
    from kerazoo import weights as weights_lib
    from kerazoo.stereo import StereoMatcher

    def matcher(choice):
        return StereoMatcher(
            choice,
            max_disparity_px,
            fill=fill,
            precision=precision,
            max_pixels=None,
            check_swapped=True,
            runtime=runtime if choice == "stereo" else "keras",
            quality=quality,
            progress=progress,
        )

    if weights != "auto":
        return matcher(None if weights == "none" else weights)
    try:
        return matcher("stereo")
    except WeightsError as e:
        if warn:
            warn(f"WARNING: the stereo-trained weights are not usable ({e}); trying ImageNet's")
    from kerazoo import backbones

    try:
        path = weights_lib.resolve(backbones.weights_file("xception"), download=False)
    except WeightsError as e:
        if warn:
            warn(
                f"WARNING: ImageNet Xception weights not available, using UNTRAINED (random) "
                f"features: {e}"
            )
        return matcher(None)
    result = matcher(str(path))
    result.weights_label = "imagenet"
    return result


def similarity_of(matcher, left, right):
    """The cosine of the two views' globally pooled features (the matcher's
    shared network), on copies downscaled to `SIMILARITY_SIDE`: under Keras
    by the demo's similarity model, which shares the matcher's stem; under
    ONNX Runtime the same arithmetic in numpy."""
    height, width = left.shape[:2]
    side = SIMILARITY_SIDE / max(height, width)
    small_h, small_w = max(MIN_SIDE, int(height * side)), max(MIN_SIDE, int(width * side))
    small = [resize_image(view, small_h, small_w) for view in (left, right)]
    if matcher.runtime == "keras":
        import keras

        from kerazoo.app.models.stereo import build_similarity_model

        model = build_similarity_model(matcher.features)
        return float(keras.ops.convert_to_numpy(model([v[None] for v in small]))[0, 0])
    pooled = [matcher.features_of(v).mean(axis=(0, 1), dtype=np.float64) for v in small]
    norms = np.linalg.norm(pooled[0]) * np.linalg.norm(pooled[1])
    return float(pooled[0] @ pooled[1] / max(norms, 1e-12))


# --------------------------------------------------------------- figures


def turbo(x):
    """Google's Turbo colour map (polynomial fit), x in [0, 1] -> RGB uint8."""
    x = np.clip(x, 0, 1)[..., None]
    coeffs = np.array(
        [
            [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
            [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
            [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
        ]
    )
    powers = x ** np.arange(6)
    return (np.clip(powers @ coeffs.T, 0, 1) * 255).astype(np.uint8)


def render_figure(left, disparity, path, title):
    """Left view | colour-mapped disparity | colour bar, as a PNG."""
    from PIL import Image, ImageDraw, ImageFont

    height, width = disparity.shape
    finite = disparity[np.isfinite(disparity)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    hi = max(hi, lo + 1e-6)
    colours = turbo((np.nan_to_num(disparity, nan=lo) - lo) / (hi - lo))
    colours[~np.isfinite(disparity)] = (40, 40, 40)
    bar_w, margin, top = 18, 56, 28
    canvas = Image.new("RGB", (2 * width + margin + bar_w + 12, height + top), "white")
    canvas.paste(Image.fromarray(np.clip(left, 0, 255).astype(np.uint8)), (0, top))
    canvas.paste(Image.fromarray(colours), (width + 6, top))
    ramp = turbo(np.linspace(1, 0, height))[:, None, :].repeat(bar_w, axis=1)
    bar_x = 2 * width + 12
    canvas.paste(Image.fromarray(ramp), (bar_x, top))
    draw = ImageDraw.Draw(canvas)
    try:  # a scalable font where Pillow has FreeType, else the bitmap one
        font = ImageFont.load_default(size=13)
    except (TypeError, OSError):
        font = ImageFont.load_default()
    draw.text((4, 6), title, fill="black", font=font)
    for k in range(5):
        value = hi - (hi - lo) * k / 4
        y = top + int((height - 1) * k / 4)
        draw.line([(bar_x + bar_w, y), (bar_x + bar_w + 4, y)], fill="black")
        draw.text((bar_x + bar_w + 6, max(top, y - 6)), f"{value:.0f}", fill="black", font=font)
    atomic_write(path, lambda tmp: canvas.save(tmp, format="PNG"))


# -------------------------------------------------------------- the demo

OUTPUTS = ("disparity.npy", "disparity.png", "summary.json")
DEPTH_OUTPUTS = ("depth.npy", "points.ply")


def run(
    left_path,
    right_path,
    weights="auto",
    max_disparity_px=None,
    out="stereo_out",
    fill=True,
    save_model=None,
    progress=None,
    warn=None,
    full_resolution=False,
    precision="auto",
    calibration=None,
    runtime="auto",
    quality="fast",
):
    """Stereo pair files -> disparity map, figure, view similarity, depth.

    Writes `disparity.npy`, `disparity.png` and `summary.json` into `out` as
    one set (see `common.output_set`), with a `calibration`
    (`kerazoo.stereo.Calibration`) also `depth.npy` and `points.ply`, and
    returns the summary. `max_disparity_px` is in pixels of the left image
    as given (default: a quarter of its width). Pairs above `MAX_PIXELS` are
    matched downscaled, and the map is written at that size in its pixels
    (the summary's `output_scale` converts), unless `full_resolution`.
    `progress(stage, seconds)` hears of each stage (see `Stages`),
    `warn(message)` of a fallback to weaker weights or a swapped-looking
    pair. `precision` picks the features' dtype policy, `runtime` what runs
    the network and `quality` which network (`StereoMatcher`'s).
    """
    # Over 80 lines for its signature and docstring; the work is in helpers.
    import warnings

    from kerazoo.stereo import (
        prepare_pair,
        upsample_disparity,
    )

    recover_output_set(out)
    check_output(out, "out", folder=True, expected=OUTPUTS + DEPTH_OUTPUTS)
    check_output(save_model, "save_model")
    stages = Stages(progress)
    with stages("read images"):
        left, right, scale, (orig_w, orig_h), orientations = load_pair(
            left_path, right_path, max_disparity_px=max_disparity_px
        )
    if max_disparity_px is None:
        max_disparity_px = default_max_disparity(orig_w)
    height, width = left.shape[:2]
    if max_disparity_px < 4:
        raise ParameterError("max_disparity_px", f"must be at least 4, received {max_disparity_px}")
    # The same range in pixels of the (possibly downscaled) views matched.
    max_disparity_processed_px = max(4, int(np.ceil(max_disparity_px * scale)))
    if max_disparity_processed_px >= width:
        raise ParameterError(
            "max_disparity_px", f"{max_disparity_px} is not smaller than the image width ({orig_w})"
        )
    with stages("build model"):
        matcher = stereo_matcher(
            weights,
            max_disparity_processed_px,
            fill,
            precision,
            progress=progress,
            warn=warn,
            runtime=runtime,
            quality=quality,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # said below, through `warn`
        result = matcher.compute(left, right)
    stages.seconds.update(result.seconds)
    left, right = prepare_pair(left, right)
    with stages("similarity"):
        similarity = similarity_of(matcher, left, right)
    if result.views_look_swapped and warn:
        warn(
            "WARNING: the views look swapped (exchanged, they match far better): LEFT is "
            "the camera whose view shows a scene point further right"
        )
    disparity, valid = result.disparity, result.valid
    figure_left = left
    if scale < 1.0 and full_resolution:  # to the original left image's pixels
        disparity = upsample_disparity(disparity, orig_h, orig_w, 1 / scale, 0.0)
        figure_left = read_image_rgb(left_path)
    output_scale = 1.0 if (scale == 1.0 or full_resolution) else scale

    summary = {
        "left": str(left_path),
        "right": str(right_path),
        "size": [orig_w, orig_h],
        "processed_size": [width, height],
        "downscaled": scale < 1.0,
        "scale": round(scale, 4),
        "exif_orientation": {"left": orientations[0], "right": orientations[1]},
        "output_size": list(disparity.shape[::-1]),
        # Disparities are in pixels of the map's own grid: divide by this
        # factor for pixels of the original images.
        "output_scale": round(output_scale, 4),
        "weights": matcher.weights_label,
        "precision": matcher.policy,
        "runtime": matcher.runtime,
        "quality": matcher.quality,
        "similarity": round(similarity, 4),
        "max_disparity": max_disparity_px,
        "views_look_swapped": result.views_look_swapped,
        "disparity": _disparity_stats(disparity, valid, fill),
        "seconds": stages.seconds,
    }
    if matcher.weights_label == "random":
        summary["note"] = "untrained features: expect a poor disparity map"
    outputs = OUTPUTS + (DEPTH_OUTPUTS if calibration is not None else ())
    out = Path(out)
    with stages("write outputs"):
        with output_set(out, OUTPUTS + DEPTH_OUTPUTS) as folder:
            write_npy(folder / "disparity.npy", disparity)
            render_figure(
                figure_left,
                disparity,
                folder / "disparity.png",
                f"kerazoo stereo: disparity (px), weights={matcher.weights_label}, "
                f"similarity={similarity:.3f}",
            )
            if calibration is not None:
                summary["depth"] = _write_depth(
                    folder, disparity, figure_left, calibration, output_scale
                )
            if save_model:
                summary["model"] = _save_model(save_model, max_disparity_processed_px, matcher.stem)
            summary["seconds"] = stages.seconds
            write_json(folder / "summary.json", summary)
    summary["outputs"] = {k: str(out / k) for k in outputs}
    return summary


def _disparity_stats(disparity, valid, fill):
    finite = disparity[np.isfinite(disparity)]

    def stat(fn):
        return round(float(fn(finite)), 3) if finite.size else None

    return {
        "min": stat(np.min),
        "median": stat(np.median),
        "max": stat(np.max),
        "valid_fraction": round(float(valid.mean()), 4),
        "estimated_fraction": round(float(np.isfinite(disparity).mean()), 4),
        "filled": fill,
    }


def _write_depth(folder, disparity, image, calibration, scale):
    """`depth.npy` and `points.ply` into `folder`; returns their summary."""
    from kerazoo.stereo import depth_from_disparity, point_cloud, write_ply

    c = calibration
    depth = depth_from_disparity(disparity, c.focal_px, c.baseline, c.doffs, scale)
    write_npy(folder / "depth.npy", depth)
    points, colors = point_cloud(disparity, image, c, scale)
    write_ply(folder / "points.ply", points, colors)
    finite = depth[np.isfinite(depth)]
    return {
        "focal_px": c.focal_px,
        "baseline": c.baseline,
        "doffs": c.doffs,
        "median": round(float(np.median(finite)), 3) if finite.size else None,
        "points": int(len(points)),
    }


def _save_model(path, max_disparity_px, stem):
    """The stem as trained (BatchNormalization, float32) with the weights
    used, in the matching model: a model to fine-tune as well as to run."""
    from kerazoo.stereo.stem import build_matching_model

    remove_stale_temporaries(path)
    trainable = build_matching_model(max_disparity_px, stem=stem)
    atomic_write(path, lambda tmp: trainable.save(tmp), suffix=".keras")
    return str(path)
