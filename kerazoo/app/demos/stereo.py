"""`kerazoo demo stereo LEFT RIGHT`: shared Xception features (section 7.160),
a disparity map and the similarity of the two views.

Pipeline:
1. Read both views (any format Pillow reads); downscale pairs above
   `MAX_PIXELS` (the summary says so) to bound time and memory.
2. ONE Xception stem applied to both views (`StereoXception`): Xception's
   layers up to its stride-2 features, run atrous so that every pixel has a
   feature, with stereo-trained weights (`demos/train_stereo.py`) by default;
   their cosine correlation for every disparity along the row
   (`CorrelationVolume`), in one Keras model, run compiled on row strips,
   its BatchNormalization folded into the convolutions, in bfloat16 where
   the CPU has it (`feature_policy`).
3. Semi-global aggregation of the cost (Hirschmueller 2008; `SGM_PATHS`
   paths, the large-jump penalty lowered across image edges; settings chosen
   on generated tuning pairs), winner-take-all with a
   parabola fit for sub-pixel disparity, and a left-right consistency check
   against the right view's own aggregation.
4. Rejected pixels (mostly occlusions), with the pixel next to them on the
   row, filled from the farther of their row neighbours (occluded surfaces
   belong to the background); from their column where the left neighbour
   is the nearer one; where the hole touches the left edge, from the
   source right, above or below nearest in colour and distance
   (`fill_occlusions`), unless `fill=False`; a 3x3 median; back to the left
   image's size if downscaled.

The similarity is the cosine of the two views' globally pooled features,
computed on a copy downscaled to `SIMILARITY_SIDE`.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import numpy as np

from kerazoo._io import (atomic_write, image_size, read_image_rgb, resize_image, write_json,
                         write_npy)
from kerazoo.app.demos import stereo_kernels
from kerazoo.app.demos.common import (check_output, choose_weights, output_set,
                                      remove_stale_temporaries)
from kerazoo.errors import InputError, ParameterError
from kerazoo.options import STEREO_PRECISIONS as PRECISIONS

MAX_PIXELS = 1_000_000  # larger pairs are downscaled to this many pixels
MIN_SIDE = 71  # Xception's smallest input
SIMILARITY_SIDE = 224
BORDER_MARGIN = 2  # pixels: matches closer to the right view's edge are rejected
SEED = 1337  # untrained features are random: make them reproducible
STRIP_ROWS = 64  # features are computed this many rows at a time: TF keeps a strip's
# working memory (~0.9 GB at 128 rows of a 1 MP pair, ~0.5 GB at 64), at the same speed
HALO_ROWS = 8  # the stem sees 7 rows up and down: strips overlap by that much
STEREO_WEIGHTS = "stereo_xception_stem"  # the manifest's stereo-trained stem
# Semi-global aggregation on the cost 1 - cosine (in [0, 2]); chosen on the
# generated tuning pairs (seeds 11, 12), never on the evaluation pairs.
SGM_PATHS, SGM_P1, SGM_P2, SGM_EDGE = 8, 0.3, 4.8, 4.0  # benchmarks/results/stereo_tuning.json
# The score given to disparities whose match lies left of the right image:
# this quantile of the pixel's in-view scores, or None: the padding's own
# (chosen on generated pairs, seeds 11-16, their truth covering that band,
# at the demo's default disparity range: None, 0.5 and 0.75 within 0.00005
# of each other at bad-2 since the fill takes the pixels next to a hole;
# None the lowest, 0.5 before).
OUT_OF_VIEW_QUANTILE = None
# Speckles (regions of at most this many pixels, joined by steps of at most
# this many px) are removed after the left-right check (chosen on the same pairs).
SPECKLE_SIZE, SPECKLE_STEP_PX = 200, 2.0
# The left-right check against the right view's own SGM on this many paths
# (chosen on the same pairs: bad-2 0.0195 -> 0.0172 with 4 paths or 8, and
# 4 cost half as much), not the right view read from the left's cost.
RIGHT_SGM_PATHS = 4
# The fill (`fill_occlusions`) also takes the valid pixels this close to a
# hole on its row, and fills a hole from its column where its left
# neighbour is this much nearer than its right one (chosen on the same pairs).
FILL_EDGE_PX, FILL_BEHIND_BOTH_PX = 1, 1.0
# A hole at the left edge takes the source right, above or below whose
# colour is nearest its own, a pixel of distance weighing this many grey
# levels (summed over RGB; chosen on the same pairs).
FILL_COLOUR_PER_PX = 2.0


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
    """Both views as float32 RGB (0-255), checked and, if above `max_pixels`,
    decoded downscaled (memory stays bounded whatever the input size).

    Returns `(left, right, scale, original_size)`: `scale` <= 1 is the factor
    applied, `original_size` the files' `(width, height)`.
    """
    size = image_size(left_path)
    other = image_size(right_path)
    if size != other:
        raise InputError(
            f"left and right views differ in size: {size[0]}x{size[1]} vs "
            f"{other[0]}x{other[1]} (a rectified pair has one size)")
    width, height = size
    if min(height, width) < MIN_SIDE:
        raise InputError(f"images of {width}x{height} are too small for Xception "
                         f"(each side must be at least {MIN_SIDE} pixels)")
    scale, target = 1.0, None
    if height * width > max_pixels:
        scale = (max_pixels / (height * width)) ** 0.5
        target = (max(MIN_SIDE, int(width * scale)), max(MIN_SIDE, int(height * scale)))
    left, right = read_image_rgb(left_path, target), read_image_rgb(right_path, target)
    return left, right, scale, size


# --------------------------------------------------------------- matching

def _right_view_disparity(cost, rows=64):
    """WTA disparity of the right view, from the left-reference cost volume:
    right pixel x at disparity d is left pixel x + d, i.e. the volume read
    along a skewed (strided) view, a band of `rows` rows at a time so no
    second volume is made."""
    h, w, depth = cost.shape
    best_d = np.empty((h, w), np.int64)
    band = np.full((rows, w + depth, depth), np.inf, np.float32)
    for top in range(0, h, rows):
        n = min(rows, h - top)
        band[:n, :w] = cost[top:top + n]
        item = band.itemsize
        # Element (y, x, d) of this view is band[y, x + d, d].
        skewed = np.lib.stride_tricks.as_strided(
            band, shape=(n, w, depth),
            strides=((w + depth) * depth * item, depth * item, (depth + 1) * item),
            writeable=False)
        best_d[top:top + n] = skewed.argmin(axis=-1)
    return best_d


def _nearest_valid_columns(valid):
    """Per pixel, the column of the nearest valid pixel at or left of it on
    its row (-1 if none) and at or right of it (the width if none)."""
    width = valid.shape[1]
    columns = np.arange(width, dtype=np.int32)
    before = np.maximum.accumulate(np.where(valid, columns, -1), axis=1)
    after = np.minimum.accumulate(np.where(valid, columns, width)[:, ::-1], axis=1)[:, ::-1]
    return before, after


def fill_occlusions(disparity, edge_px=FILL_EDGE_PX, behind_both_px=FILL_BEHIND_BOTH_PX,
                    image=None, colour_per_px=FILL_COLOUR_PER_PX):
    """Fills NaNs from valid neighbours, as occlusions ask for.

    In the left view, what the right camera cannot see lies just left of the
    nearer surface that hides it, and belongs to the farther one: a hole with
    a valid pixel to its left on the row takes the smaller (farther) of the
    nearest valid values to its left and right.

    Unless its left neighbour is more than `behind_both_px` nearer than its
    right one (None: never): the right one then hides a surface farther
    than itself, and the left one is nearer still, so neither is that
    surface: the hole takes the farther of the nearest valid pixels above
    and below it in its column (the background around the objects).

    A hole with none to its left touches the image's left edge, where the
    row offers only the surface to its right, often the very object that
    hides it: it takes the nearest valid pixel to its right on the row or
    above or below it in its column. The left band that the right camera
    never sees is a column of holes, so its nearest stays on the row; a
    background hidden behind an object near the edge is nearer to the
    background above or below the object. Given the left view as `image`
    ((h, w, channels) or grey (h, w), 0-255), "nearest" also weighs colour:
    the source with the least `|colour difference| (summed over channels) +
    colour_per_px * distance` wins, so an object reaching into the band keeps its own
    pixels and the background beside it takes the background's.

    The `edge_px` valid pixels next to a hole on its row are filled with it:
    their matching windows straddle the occlusion, and as a hole's source
    they carried their sub-pixel error over the whole hole.
    Pixels with no valid pixel on their row or column stay NaN.
    """
    height, width = disparity.shape
    valid = np.isfinite(disparity)
    hole = ~valid
    for step in range(1, edge_px + 1):
        valid[:, step:] &= ~hole[:, :-step]
        valid[:, :-step] &= ~hole[:, step:]
    rows, columns = np.ogrid[:height, :width]
    left_x, right_x = _nearest_valid_columns(valid)
    up_y, down_y = (index.T for index in _nearest_valid_columns(valid.T))
    has_left, has_right, has_up, has_down = (left_x >= 0, right_x < width, up_y >= 0,
                                             down_y < height)

    def value(found, y, x):
        return np.where(found, disparity[np.clip(y, 0, height - 1), np.clip(x, 0, width - 1)],
                        np.inf)

    left, right = value(has_left, rows, left_x), value(has_right, rows, right_x)
    up, down = value(has_up, up_y, columns), value(has_down, down_y, columns)
    along_row = np.minimum(left, right)
    if behind_both_px is not None:
        behind_both = (has_left & has_right & (left > right + behind_both_px)
                       & (has_up | has_down))
        along_row = np.where(behind_both, np.minimum(up, down), along_row)
    filled = np.where(valid, disparity, along_row)
    # Holes at the left edge (only they need it): the nearest source right,
    # above or below, by distance in pixels (inf: none), and colour.
    ys, xs = np.nonzero(~valid & ~has_left)
    source_y = np.stack([ys, up_y[ys, xs], down_y[ys, xs]])
    source_x = np.stack([right_x[ys, xs], xs, xs])
    found = np.stack([has_right[ys, xs], has_up[ys, xs], has_down[ys, xs]])
    distance = np.where(found, np.abs(source_y - ys) + np.abs(source_x - xs), np.inf)
    source_y, source_x = np.clip(source_y, 0, height - 1), np.clip(source_x, 0, width - 1)
    if image is not None:
        image = np.asarray(image, np.float32)
        if image.ndim == 2:  # grey levels: one channel
            image = image[..., None]
        if image.ndim != 3 or image.shape[:2] != (height, width):
            raise ValueError(f"`image` must be the left view, {height}x{width} pixels like "
                             f"the disparity, received shape {image.shape}")
        colour = np.abs(image[source_y, source_x] - image[ys, xs]).sum(axis=-1)
        distance = colour + colour_per_px * distance
    sources = np.where(found, disparity[source_y, source_x], np.inf)
    filled[ys, xs] = np.take_along_axis(sources, distance.argmin(axis=0)[None], axis=0)[0]
    return np.where(np.isfinite(filled), filled, np.nan).astype(np.float32)


def neutralise_out_of_view(volume, quantile=OUT_OF_VIEW_QUANTILE):
    """In place: left pixel x at disparity d > x matches a column left of the
    right image, where the correlation saw only padding (score 0, the cost of
    a poor match). Such a disparity may well be the truth (Middlebury's left
    band is full of them), so it gets the pixel's `quantile` of its in-view
    scores instead: neither winning nor losing by itself, the aggregation
    decides from the neighbours. Only the first D columns have such
    disparities. `quantile=None` leaves the volume alone. Returns it."""
    if quantile is None:
        return volume
    stereo_kernels.fill_out_of_view(volume, float(quantile))
    return volume


def remove_speckles(disparity, max_size, max_difference):
    """NaN over the speckles of a disparity map: 4-connected regions (a step
    of at most `max_difference` px joins two pixels) of at most `max_size`
    pixels, what OpenCV's `filterSpeckles` removes (SGBM's usual
    post-processing; Hirschmueller 2008 filters peaks the same way).
    `max_size=0` removes nothing."""
    if max_size <= 0:
        return disparity
    speckle = stereo_kernels.speckle_mask(np.ascontiguousarray(disparity, np.float32),
                                          int(max_size), float(max_difference))
    return np.where(speckle, np.nan, disparity).astype(disparity.dtype)


def sgm(cost, p1=SGM_P1, p2=SGM_P2, guide=None, edge=SGM_EDGE, paths=SGM_PATHS, out=None):
    """Semi-global aggregation (Hirschmueller, PAMI 2008) of an (h, w, D) cost
    along `paths` (4: the image axes; 8: and the diagonals) directions: each
    path adds the cheapest way to arrive, paying `p1` for a 1-px disparity
    change and `p2` for a larger jump. With a `guide` image (h, w) the jump
    penalty falls across its edges, `max(1.5 p1, p2 / (1 + |gradient| / edge))`,
    where depth edges usually are. Returns the mean over the paths, in `out`
    (a float32 array of the cost's shape) when given."""
    if paths not in (4, 8):
        raise ValueError(f"`paths` must be 4 or 8, received {paths}")
    cost = np.ascontiguousarray(cost, np.float32)
    guided = guide is not None
    # One compiled signature: float32 everywhere, a dummy guide when none.
    guide = (np.ascontiguousarray(guide, np.float32) if guided
             else np.zeros((1, 1), np.float32))
    p1, p2, edge = np.float32(p1), np.float32(p2), np.float32(edge)
    if out is None:
        # Pages of np.zeros are mapped as the walks first touch them, in
        # parallel; zeros_like would fault them all in first, on one core.
        total = np.zeros(cost.shape, np.float32)
    else:
        total = out
        total.fill(0)
    stereo_kernels.add_row_paths(cost, total, guide, p1, p2, edge, guided)
    for column_step in (0, 1, -1)[:1 if paths == 4 else 3]:
        stereo_kernels.add_column_paths(cost, total, guide, p1, p2, edge, guided, column_step)
    total /= np.float32(paths)
    return total


def median3(disparity):
    """3x3 median that ignores NaN neighbours (NaN stays NaN; the image's
    edge repeats beyond it)."""
    return stereo_kernels.median3(np.ascontiguousarray(disparity, np.float32))


def right_view_cost(cost, out_of_view=OUT_OF_VIEW_QUANTILE):
    """In place: the left view's (h, w, D) cost becomes the right view's:
    right pixel xr at disparity d is left pixel xr + d. Disparities whose
    match lies right of the left image (xr + d >= w) get the cost of the
    pixel's `out_of_view` quantile of its in-view scores, as
    `neutralise_out_of_view` does for the left view (None: the worst cost,
    2). Returns the volume."""
    stereo_kernels.shift_to_right_view(cost, np.float32(2.0))  # 2: beyond the left image
    # Mirrored, column x of the right view has x + 1 in-view disparities, as
    # the left view's has; a score's quantile q is the cost's 1 - q.
    neutralise_out_of_view(cost[:, ::-1], None if out_of_view is None else 1.0 - out_of_view)
    return cost


def disparity_from_cost(similarity_volume, fill=True, lr_tolerance=1.0, guide=None, image=None,
                        aggregate=True, overwrite=False, out_of_view=OUT_OF_VIEW_QUANTILE,
                        speckle_size=SPECKLE_SIZE, speckle_step_px=SPECKLE_STEP_PX,
                        right_guide=None, right_paths=RIGHT_SGM_PATHS):
    """(h, w, D) correlation scores -> (disparity (h, w) with NaN, valid mask).

    The disparity is in the volume's pixels; `valid` marks pixels that passed
    the left-right check and are no speckle (`remove_speckles(speckle_size,
    speckle_step_px)`), before any filling. Disparities that fall outside
    the right view are scored by `neutralise_out_of_view(out_of_view)`.
    `aggregate` runs `sgm` (with `guide`, the left view's grey levels, when
    given). The left-right check compares with the right view's winners:
    with `right_paths` (4 or 8, and `aggregate`), of the right view's own
    cost aggregated by `sgm` on that many paths (`right_guide`: the right
    view's grey levels); with None, read from the left view's cost.
    `overwrite` lets the volume's memory hold the cost (one volume less at
    the peak). `image`, the left view (h, w, 3), guides the fill by colour
    (see `fill_occlusions`).
    """
    volume = similarity_volume.astype(np.float32, copy=not overwrite)
    neutralise_out_of_view(volume, out_of_view)
    cost = np.subtract(1.0, volume, out=volume)
    aggregated = sgm(cost, guide=guide) if aggregate else cost
    # Winner-take-all, refined by a parabola through its neighbours' costs.
    d, disparity = stereo_kernels.winners(aggregated)
    if aggregate and right_paths:
        # The right view's own aggregation: the left's smoothing spreads a
        # near surface over the background it hides, and the right view
        # read from that cost agrees with it; aggregated on its own, the
        # right view has its occlusions on the other side.
        # The left's aggregation is done with: its memory (pages already
        # mapped) takes the right's, one volume less at the peak.
        right = sgm(right_view_cost(cost, out_of_view), guide=right_guide,
                    paths=right_paths, out=aggregated).argmin(axis=-1)
    else:
        right = _right_view_disparity(aggregated)
    h, w = d.shape
    xr = np.arange(w)[None, :] - d
    inside = xr >= BORDER_MARGIN
    back = right[np.arange(h)[:, None], np.clip(xr, 0, w - 1)]
    valid = inside & (np.abs(d - back) <= lr_tolerance)
    disparity = np.where(valid, disparity, np.nan).astype(np.float32)
    disparity = remove_speckles(disparity, speckle_size, speckle_step_px)
    valid = np.isfinite(disparity)
    if fill:
        disparity = median3(fill_occlusions(disparity, image=image))
    return disparity, valid


def correlate_in_strips(matching, left, right, rows=STRIP_ROWS):
    """`matching`'s volume for the whole pair, computed on horizontal strips
    (each with `HALO_ROWS` more above and below, beyond the stem's reach), so
    the features and products of only one strip are in memory at a time.

    Every strip window has the same height (the last one starts higher), so
    the model compiles once per pair, not once per strip shape; the windows
    are even-sized, which keeps the atrous stem's pixel phases exact.
    """
    height = left.shape[0]
    window = min(height, rows + 2 * HALO_ROWS)
    volume = None
    for top in range(0, height, rows):
        low = min(max(0, top - HALO_ROWS), height - window)
        # predict_on_batch, not an eager call: compiled once (TensorFlow 5.6 s
        # vs 6.7 s eager on Motorcycle, JAX 13.7 s vs 25.8 s).
        strip = np.asarray(matching.predict_on_batch([left[None, low:low + window],
                                                      right[None, low:low + window]]))[0]
        if volume is None:
            volume = np.empty((height,) + strip.shape[1:], np.float32)
        keep = min(rows, height - top)
        volume[top:top + keep] = strip[top - low:top - low + keep]
    return volume


def stereo_stem(choice, warn=None):
    """The shared stem with the weights `choice` names: `auto` (the shipped
    stereo-trained ones), `stereo` (the same, or an error), `imagenet`
    (ImageNet Xception's first layers), `none` (random), or a path: a
    `.weights.h5` of the stem, or a keras-applications Xception file.
    Returns `(stem, label)`."""
    from kerazoo import backbones
    from kerazoo import weights as weights_lib
    from kerazoo.app.demos.common import load_pretrained
    from kerazoo.app.models.stereo import copy_xception_weights, xception_stem

    stem = xception_stem()
    if choice in ("auto", "stereo"):
        try:
            load_pretrained(stem, STEREO_WEIGHTS)
            return stem, "stereo-trained"
        except weights_lib.WeightsError as e:
            if choice == "stereo":
                raise
            if warn:
                warn(f"WARNING: the stereo-trained weights are not usable ({e}); trying "
                     "ImageNet's")
    if choice not in ("auto", "imagenet", "none") and str(choice).endswith(".weights.h5"):
        path = Path(choice)
        if not path.is_file():
            raise ParameterError("weights", f"{choice}: no such file (use auto, stereo, "
                                 "imagenet, none or a path)")
        weights_lib.load_weights_quietly(stem, path, "the stereo stem")
        return stem, str(path)
    path, label, warning = choose_weights(choice, backbones.weights_file("xception"),
                                          "Xception", "using UNTRAINED (random) features")
    if warning and warn:
        warn(warning)
    if path is not None:
        copy_xception_weights(stem, backbones.xception(weights=path,
                                                       include_preprocessing=False))
    return stem, label


def cpu_has_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether this CPU says it computes in bfloat16 (x86's avx512_bf16 or
    amx_bf16 among the flags in `cpuinfo`; False where there is no such file)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    return not {"avx512_bf16", "amx_bf16"}.isdisjoint(text.split())


def feature_policy(precision="auto"):
    """The stem's dtype policy for `precision` (one of `PRECISIONS`).

    `auto` is `mixed_bfloat16` under TensorFlow and torch on a CPU with
    bfloat16 instructions, where it was measured faster at the same
    accuracy (`benchmarks/stereo.py`, Motorcycle's features warm: 0.94 ->
    0.69 s under TensorFlow, 3.27 -> 2.56 s under torch; the generated
    tuning pairs' bad-1/2/4 equal to 4 decimals), and `float32` elsewhere
    (JAX was slower in bfloat16: 5.50 -> 6.55 s)."""
    import keras

    if precision not in PRECISIONS:
        raise ParameterError("precision", f"must be one of {', '.join(PRECISIONS)}, "
                             f"received {precision!r}")
    if precision != "auto":
        return precision
    fast = keras.backend.backend() in ("tensorflow", "torch") and cpu_has_bfloat16()
    return "mixed_bfloat16" if fast else "float32"


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

OUTPUTS = ("disparity.npy", "disparity.png", "summary.json")


def run(left_path, right_path, weights="auto", max_disparity_px=None, out="stereo_out",
        fill=True, save_model=None, progress=None, warn=None, full_resolution=False,
        precision="auto"):
    """Stereo pair -> shared Xception features, disparity map, view similarity.

    Writes `disparity.npy`, `disparity.png` and `summary.json` into `out` as
    one set (see `common.output_set`) and returns the summary.
    `max_disparity_px` is in pixels of the left image as given (default: a
    quarter of its width). Pairs above `MAX_PIXELS` are matched downscaled,
    and the map is written at that size in its pixels (the summary's
    `scale` converts), unless `full_resolution`: then at the images' size.
    `progress(stage, seconds)` hears of each stage (see `Stages`),
    `warn(message)` of a fallback to weaker weights. `precision` picks the
    stem's dtype policy (`feature_policy`).
    """
    import keras

    from kerazoo.app.models.stereo import (build_matching_model, build_stereo_models,
                                           fold_batch_norm)

    check_output(out, "out", folder=True)
    check_output(save_model, "save_model")
    policy = feature_policy(precision)
    stages = Stages(progress)
    with stages("read images"):
        left, right, scale, (orig_w, orig_h) = load_pair(left_path, right_path)
    height, width = left.shape[:2]
    if max_disparity_px is None:
        max_disparity_px = max(16, orig_w // 4)
    if max_disparity_px < 1:
        raise ParameterError("max_disparity_px", f"must be positive, received {max_disparity_px}")
    # The same range in pixels of the (possibly downscaled) views the model sees.
    max_disparity_processed_px = max(4, int(np.ceil(max_disparity_px * scale)))
    if max_disparity_processed_px >= width:
        raise ParameterError("max_disparity_px", f"{max_disparity_px} is not smaller than the "
                             f"image width ({orig_w})")

    with stages("build model"):
        keras.utils.set_random_seed(SEED)
        stem, weights_label = stereo_stem(weights, warn)
        # For inference only: BatchNormalization folded into the convolutions.
        matching, similarity_model = build_stereo_models(max_disparity_processed_px,
                                                         fold_batch_norm(stem, policy))
    with stages("features + correlation"):
        volume = correlate_in_strips(matching, left, right)
    with stages("similarity"):
        side = SIMILARITY_SIDE / max(height, width)
        small_h, small_w = max(MIN_SIDE, int(height * side)), max(MIN_SIDE, int(width * side))
        small = [resize_image(left, small_h, small_w)[None],
                 resize_image(right, small_h, small_w)[None]]
        similarity = float(keras.ops.convert_to_numpy(similarity_model(small))[0, 0])
    with stages("matching"):
        disparity, valid = disparity_from_cost(volume, fill=fill, guide=left.mean(axis=-1),
                                               image=left,
                                               right_guide=right.mean(axis=-1), overwrite=True)
        del volume
        figure_left = left
        if scale < 1.0 and full_resolution:  # to the original left image's pixels
            disparity = upsample_disparity(disparity, orig_h, orig_w, 1 / scale, 0.0)
            figure_left = read_image_rgb(left_path)

    finite = disparity[np.isfinite(disparity)]
    output_scale = 1.0 if (scale == 1.0 or full_resolution) else scale
    summary = {
        "left": str(left_path), "right": str(right_path),
        "size": [orig_w, orig_h],
        "processed_size": [width, height],
        "downscaled": scale < 1.0,
        "scale": round(scale, 4),
        "output_size": list(disparity.shape[::-1]),
        # Disparities are in pixels of the map's own grid: divide by this
        # factor for pixels of the original images.
        "output_scale": round(output_scale, 4),
        "weights": weights_label,
        "precision": policy,
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
        summary["note"] = "untrained features: expect a poor disparity map"
    out = Path(out)
    with stages("write outputs"):
        with output_set(out, OUTPUTS) as folder:
            write_npy(folder / "disparity.npy", disparity)
            render_figure(figure_left, disparity, folder / "disparity.png",
                          f"kerazoo stereo: disparity (px), weights={weights_label}, "
                          f"similarity={similarity:.3f}")
            if save_model:
                remove_stale_temporaries(save_model)
                # The stem as trained (BatchNormalization, float32) with the
                # weights used: a model to fine-tune as well as to run.
                trainable = build_matching_model(max_disparity_processed_px, stem=stem)
                atomic_write(save_model, lambda tmp: trainable.save(tmp), suffix=".keras")
                summary["model"] = str(save_model)
            summary["seconds"] = stages.seconds
            write_json(folder / "summary.json", summary)
    summary["outputs"] = {k: str(out / k) for k in OUTPUTS}
    return summary
