"""`kerazoo demo stereo LEFT RIGHT`: shared Xception features (section 7.160),
a disparity map and the similarity of the two views.

Pipeline:
1. Read both views (any format Pillow reads); downscale pairs above
   `MAX_PIXELS` (the summary says so) to bound time and memory.
2. ONE Xception base applied to both views (`StereoXception`): stride-2
   features, and their parameter-free cosine correlation for every disparity
   along the row (`CorrelationVolume`), both in one Keras model.
   A 3x3 mean of the volume (in the model too) steadies the scores.
3. Winner-take-all with a parabola fit for sub-pixel disparity, and a
   left-right consistency check (matches landing on the right view's border
   are rejected too: their true partner is usually outside the view).
4. Rejected pixels (mostly occlusions) filled from the farther of their row
   neighbours (occluded surfaces belong to the background), unless
   `fill=False`; then bilinear refinement to the left image's full resolution.

Semi-global aggregation (SGM) was tried on this cost and made every measured
pair worse (see benchmarks/stereo.py), so it is not used.

The similarity is the cosine of the two views' globally pooled deepest
Xception features, computed on a copy downscaled to `SIMILARITY_SIDE`.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np

from kerazoo._io import atomic_write, read_image_rgb, resize_image, write_json, write_npy
from kerazoo.app.demos.common import choose_weights
from kerazoo.errors import InputError, ParameterError

MAX_PIXELS = 1_000_000  # larger pairs are downscaled to this many pixels
MIN_SIDE = 71  # Xception's smallest input
SIMILARITY_SIDE = 224
BORDER_MARGIN = 2  # feature pixels: matches closer to the right view's edge are rejected
SEED = 1337  # untrained features are random: make them reproducible


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


def load_pair(left_path, right_path, max_pixels=MAX_PIXELS):
    """Both views as float32 RGB (0-255), checked and, if large, downscaled.

    Returns (original_left, left, right, scale) where scale <= 1 is the
    factor applied to get `left` and `right`.
    """
    left, right = read_image_rgb(left_path), read_image_rgb(right_path)
    original = left
    if left.shape != right.shape:
        raise InputError(
            f"left and right views differ in size: {left.shape[1]}x{left.shape[0]} vs "
            f"{right.shape[1]}x{right.shape[0]} (a rectified pair has one size)")
    height, width = left.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise InputError(f"images of {width}x{height} are too small for Xception "
                         f"(each side must be at least {MIN_SIDE} pixels)")
    scale = 1.0
    if height * width > max_pixels:
        scale = (max_pixels / (height * width)) ** 0.5
        h, w = max(MIN_SIDE, int(height * scale)), max(MIN_SIDE, int(width * scale))
        left, right = resize_image(left, h, w), resize_image(right, h, w)
    return original, left, right, scale


# --------------------------------------------------------------- matching

def _subpixel(cost, d):
    """Parabola through the costs at d-1, d, d+1 (minimum), clipped to +-0.5."""
    depth = cost.shape[-1]
    dm, dp = np.clip(d - 1, 0, depth - 1), np.clip(d + 1, 0, depth - 1)
    take = lambda k: np.take_along_axis(cost, k[..., None], axis=-1)[..., 0]  # noqa: E731
    cm, c0, cp = take(dm), take(d), take(dp)
    denom = cm - 2 * c0 + cp
    delta = np.where(denom > 1e-9, 0.5 * (cm - cp) / np.maximum(denom, 1e-9), 0.0)
    inner = (d > 0) & (d < depth - 1)
    return d + np.where(inner, np.clip(delta, -0.5, 0.5), 0.0)


def _right_view_disparity(cost):
    """WTA disparity of the right view, from the left-reference cost volume:
    right pixel x at disparity d is left pixel x + d."""
    h, w, depth = cost.shape
    right = np.full_like(cost, np.inf)
    for d in range(depth):
        right[:, : w - d, d] = cost[:, d:, d]
    return right.argmin(axis=-1)


def fill_occlusions(disparity):
    """Fills NaNs with the smaller (farther) of the nearest valid values to
    their left and right on the same row; rows with no valid value stay NaN."""
    out = disparity.copy()
    width = disparity.shape[1]
    idx = np.arange(width)
    for r, row in enumerate(disparity):
        valid = np.isfinite(row)
        if valid.all() or not valid.any():
            continue
        left_idx = np.maximum.accumulate(np.where(valid, idx, -1))
        right_idx = np.minimum.accumulate(np.where(valid, idx, width)[::-1])[::-1]
        lv = np.where(left_idx >= 0, row[np.clip(left_idx, 0, None)], np.inf)
        rv = np.where(right_idx < width, row[np.clip(right_idx, None, width - 1)], np.inf)
        out[r] = np.where(valid, row, np.minimum(lv, rv))
    return out


def disparity_from_cost(similarity_volume, fill=True, lr_tolerance=1.0):
    """(h, w, D) correlation scores -> (disparity (h, w) with NaN, valid mask).

    The disparity is in feature pixels; `valid` marks pixels that passed the
    left-right check (before any filling).
    """
    cost = 1.0 - similarity_volume.astype(np.float32)
    d = cost.argmin(axis=-1)
    disparity = _subpixel(cost, d).astype(np.float32)
    right = _right_view_disparity(cost)
    h, w = d.shape
    xr = np.arange(w)[None, :] - d
    inside = xr >= BORDER_MARGIN
    back = right[np.arange(h)[:, None], np.clip(xr, 0, w - 1)]
    valid = inside & (np.abs(d - back) <= lr_tolerance)
    disparity = np.where(valid, disparity, np.nan).astype(np.float32)
    if fill:
        disparity = fill_occlusions(disparity)
    return disparity, valid


def upsample_disparity(disparity, height, width, stride, offset):
    """Bilinear refinement of a feature-grid disparity to (height, width)
    image pixels, in image pixels. Feature (i, j) is centred on image pixel
    (stride * i + offset, stride * j + offset); NaN stays NaN."""
    h, w = disparity.shape

    def axis(n_out, n_in):
        pos = np.clip((np.arange(n_out) - offset) / stride, 0, n_in - 1)
        lo = np.minimum(np.floor(pos).astype(int), max(n_in - 2, 0))
        frac = np.clip(pos - lo, 0, 1) if n_in > 1 else np.zeros_like(pos)
        return lo, np.minimum(lo + 1, n_in - 1), frac.astype(np.float32)

    y0, y1, fy = axis(height, h)
    x0, x1, fx = axis(width, w)
    valid = np.isfinite(disparity)
    values = np.where(valid, disparity, 0.0).astype(np.float32)
    weights = valid.astype(np.float32)

    def interp(a):
        top = a[y0][:, x0] * (1 - fx) + a[y0][:, x1] * fx
        bottom = a[y1][:, x0] * (1 - fx) + a[y1][:, x1] * fx
        return top * (1 - fy)[:, None] + bottom * fy[:, None]

    num, den = interp(values), interp(weights)
    out = np.where(den > 0.5, num / np.maximum(den, 1e-6), np.nan)
    return (out * stride).astype(np.float32)


# --------------------------------------------------------------- figures

def turbo(x):
    """Google's Turbo colour map (polynomial fit), x in [0, 1] -> RGB uint8."""
    x = np.clip(x, 0, 1)[..., None]
    coeffs = np.array([
        [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
        [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
        [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
    ])
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

def run(left_path, right_path, weights="auto", max_disparity_px=None, out="stereo_out",
        fill=True, save_model=None, progress=None, warn=None):
    """Stereo pair -> shared Xception features, disparity map, view similarity.

    Writes `disparity.npy`, `disparity.png` and `summary.json` to `out`
    (each through a temporary file and a rename) and returns the summary.
    `max_disparity_px` is in pixels of the left image as given (default: a
    quarter of its width). `progress(stage, seconds)` hears of each stage
    (see `Stages`), `warn(message)` of a fallback to untrained weights.
    """
    import keras

    from kerazoo import backbones
    from kerazoo.app.models.stereo import FEATURE_GEOMETRY, build_stereo_models

    stages = Stages(progress)
    with stages("read images"):
        original_left, left, right, scale = load_pair(left_path, right_path)
    height, width = left.shape[:2]
    orig_h, orig_w = original_left.shape[:2]
    if max_disparity_px is None:
        max_disparity_px = max(16, orig_w // 4)
    if max_disparity_px < 1:
        raise ParameterError("max_disparity_px", f"must be positive, received {max_disparity_px}")
    # The same range in pixels of the (possibly downscaled) views the model sees.
    max_disparity_processed_px = max(4, int(np.ceil(max_disparity_px * scale)))
    if max_disparity_processed_px >= width:
        raise ParameterError("max_disparity_px", f"{max_disparity_px} is not smaller than the "
                             f"image width ({orig_w})")

    with stages("resolve weights"):
        weights_path, weights_label, warning = choose_weights(
            weights, backbones.weights_file("xception"), "Xception",
            "using UNTRAINED (random) features")
    if warning and warn:
        warn(warning)
    level = 2
    stride, offset = FEATURE_GEOMETRY[level]
    with stages("build model"):
        keras.utils.set_random_seed(SEED)
        matching, similarity_model = build_stereo_models(max_disparity_processed_px,
                                                         weights_path, level)
    batch = [left[None], right[None]]
    with stages("features + correlation"):
        volume = keras.ops.convert_to_numpy(matching(batch, training=False))[0]
    with stages("similarity"):
        side = SIMILARITY_SIDE / max(height, width)
        small_h, small_w = max(MIN_SIDE, int(height * side)), max(MIN_SIDE, int(width * side))
        small = [resize_image(left, small_h, small_w)[None],
                 resize_image(right, small_h, small_w)[None]]
        similarity = float(keras.ops.convert_to_numpy(similarity_model(small))[0, 0])
    with stages("matching"):
        coarse, valid = disparity_from_cost(volume, fill=fill)
        # Feature pixels -> pixels of the (possibly downscaled) left view ->
        # pixels of the original left image.
        disparity = upsample_disparity(coarse, orig_h, orig_w, stride / scale, offset / scale)

    finite = disparity[np.isfinite(disparity)]
    summary = {
        "left": str(left_path), "right": str(right_path),
        "size": [orig_w, orig_h],
        "processed_size": [width, height],
        "downscaled": scale < 1.0,
        "scale": round(scale, 4),
        "weights": weights_label,
        "similarity": round(similarity, 4),
        "max_disparity": max_disparity_px,
        "disparity": {
            "min": round(float(finite.min()), 3) if finite.size else None,
            "median": round(float(np.median(finite)), 3) if finite.size else None,
            "max": round(float(finite.max()), 3) if finite.size else None,
            "valid_fraction": round(float(valid.mean()), 4),
            "estimated_fraction": round(float(np.isfinite(disparity).mean()), 4),
            "filled": fill,
        },
        "seconds": stages.seconds,
    }
    if weights_label == "random":
        summary["note"] = ("untrained features: the disparity map is meaningful, the "
                           "similarity is not (random deep features look alike)")
    out = Path(out)
    with stages("write outputs"):
        write_npy(out / "disparity.npy", disparity)
        render_figure(original_left, disparity, out / "disparity.png",
                      f"kerazoo stereo: disparity (px), weights={weights_label}, "
                      f"similarity={similarity:.3f}")
        if save_model:
            atomic_write(save_model, lambda tmp: matching.save(tmp), suffix=".keras")
            summary["model"] = str(save_model)
        summary["seconds"] = stages.seconds
        write_json(out / "summary.json", summary)
    summary["outputs"] = {k: str(out / k) for k in ("disparity.npy", "disparity.png",
                                                    "summary.json")}
    return summary
