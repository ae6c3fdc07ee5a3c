"""The matching steps of `StereoMatcher`, on numpy arrays: the network
features' correlation, the census cost blended into it, semi-global
aggregation, the right view's cost, speckles, the occlusion fill, the 3x3
median, and the bad-pixel rate that scores a map; and the colour check,
which re-estimates matches that do not look like what they matched.

Each is usable alone (the tuning and benchmark scripts densify other
methods' maps with the same `fill_occlusions` and `median3`); the loops
run compiled (`kerazoo.stereo._kernels`).
"""

from __future__ import annotations

import numpy as np

from kerazoo.errors import ParameterError
from kerazoo.stereo import _kernels
from kerazoo.stereo._checks import is_finite, is_int, is_number


def correlate_features(left, right, max_disparity):
    """The cosine correlation of two views' features, the first matching step.

    Args:
        left, right: `(h, w, c)` features of the two views, float32 or
            bfloat16 (as the mixed_bfloat16 policy returns them).
        max_disparity: the largest disparity, in feature pixels.

    Returns:
        float32 `(h, w, max_disparity + 1)`: at `[y, x, d]` the cosine of
        left `(y, x)`'s and right `(y, x - d)`'s features, each less its
        mean over channels, and -1 where `x - d` is outside the right view:
        `kerazoo.layers.CorrelationVolume`'s volume, computed by a compiled
        kernel that normalises one row at a time, so the features are read
        once and never copied.
    """
    left, right = np.asarray(left), np.asarray(right)
    if left.ndim != 3:
        raise ParameterError("left", f"must be (h, w, c) features, received shape {left.shape}")
    if right.shape != left.shape:
        raise ParameterError(
            "right", f"must have left's shape {left.shape}, received shape {right.shape}"
        )
    if not is_int(max_disparity):
        raise ParameterError(
            "max_disparity", f"must be an integer >= 0, received {max_disparity!r}"
        )
    if left.dtype.name == "bfloat16" and right.dtype.name == "bfloat16":
        # numba has no bfloat16: the kernel widens the uint16 bits itself.
        return _kernels.bfloat16_cosine_correlation(
            left.view(np.uint16), right.view(np.uint16), max_disparity
        )
    return _kernels.cosine_correlation(
        np.ascontiguousarray(left, np.float32),
        np.ascontiguousarray(right, np.float32),
        max_disparity,
    )


def _check_sigma(sigma_px):
    """`sigma_px` must be a finite number >= 0: a Gaussian's width."""
    if not is_finite(sigma_px):
        raise ParameterError("sigma_px", f"must be a finite number >= 0, received {sigma_px!r}")


def _check_grey(name, grey):
    """`grey` as a float32 `(h, w)` array, or a ParameterError naming `name`."""
    grey = np.asarray(grey, np.float32)
    if grey.ndim != 2:
        raise ParameterError(name, f"must be a grey (h, w) image, received shape {grey.shape}")
    return grey


def sgm(cost, p1, p2, guide=None, edge=4.0, paths=8, out=None):
    """Semi-global aggregation of a matching cost (Hirschmüller 2008).

    Along each path direction, a pixel's cost adds the cheapest way to
    arrive from the pixel before it on the path: `p1` for a 1 px disparity
    change, `p2` for a larger jump. With a `guide` image the jump penalty
    falls across its edges, where depth edges usually are:
    `max(1.5 p1, p2 / (1 + |gradient| / edge))`.

    Args:
        cost: (h, w, D) matching cost, lower for a better match.
        p1, p2: the penalties of a 1 px disparity change and a larger jump.
        guide: optional (h, w) grey image whose edges lower `p2`.
        edge: the guide's gradient, in grey levels, that halves `p2`.
        paths: 4 (the image axes) or 8 (the axes and the diagonals).
        out: optional float32 array of the cost's shape to write into.

    Returns:
        float32 (h, w, D): the mean over the paths of their aggregated
        costs, in `out` when given.

    Reference:
        Hirschmüller, "Stereo Processing by Semiglobal Matching and Mutual
        Information", PAMI 2008.
    """
    if paths not in (4, 8):
        raise ParameterError("paths", f"must be 4 or 8, received {paths}")
    cost = np.ascontiguousarray(cost, np.float32)
    guided = guide is not None
    # One compiled signature: float32 everywhere, a dummy guide when none.
    guide = np.ascontiguousarray(guide, np.float32) if guided else np.zeros((1, 1), np.float32)
    p1, p2, edge = np.float32(p1), np.float32(p2), np.float32(edge)
    if out is None:
        # np.zeros maps its pages as the (parallel) walks first touch them;
        # zeros_like would fault them all in first, on one core.
        total = np.zeros(cost.shape, np.float32)
    else:
        total = out
        total.fill(0)
    _kernels.add_row_paths(cost, total, guide, p1, p2, edge, guided)
    for column_step in (0, 1, -1)[: 1 if paths == 4 else 3]:
        _kernels.add_column_paths(cost, total, guide, p1, p2, edge, guided, column_step)
    total /= np.float32(paths)
    return total


def winners(cost):
    """Per pixel, the disparity of least cost (int64, numpy's argmin) and its
    sub-pixel refinement (float32): the vertex of the parabola through the
    winner's cost and its two neighbours', within +-0.5 px (none at the
    range's ends or where the parabola opens downwards)."""
    return _kernels.winners(np.ascontiguousarray(cost, np.float32))


def neutralize_out_of_view(scores, quantile):
    """In place: left pixel x at disparity d > x matches a column left of the
    right image, where the correlation saw only padding. Such a disparity may
    be the truth, so its score becomes the pixel's `quantile` of its in-view
    scores: neither winning nor losing by itself. `quantile=None` leaves the
    volume alone. Returns it."""
    if quantile is not None:
        _kernels.fill_out_of_view(scores, float(quantile))
    return scores


# 7 x 7: 48 bits fit one uint64 per pixel.
CENSUS_WINDOW = (7, 7)


def census_transform(grey, window=CENSUS_WINDOW):
    """The census transform of a grey image (Zabih & Woodfill 1994).

    Args:
        grey: (h, w) image.
        window: (rows, columns), both odd, at most 65 pixels in all (64
            bits beside the centre).

    Returns:
        uint64 (h, w): one bit per other pixel of the window around each
        pixel (the image's edge repeated), 1 where it is darker than the
        centre. Only the order of grey levels counts, so a change of gain,
        offset or gamma between two views leaves the codes as they are.
    """
    rows, columns = window
    if rows % 2 == 0 or columns % 2 == 0 or rows * columns > 65:
        raise ParameterError("window", f"must be odd sides of at most 65 pixels, received {window}")
    grey = np.ascontiguousarray(grey, np.float32)
    return _kernels.census_transform(grey, rows // 2, columns // 2)


def gaussian_blur(image, sigma_px):
    """A grey image `(h, w)` blurred by a Gaussian of `sigma_px` pixels, its
    edge repeated: float32, separable taps out to 4 sigma (scipy.ndimage's
    `gaussian_filter(image, sigma_px, mode="nearest")`). `sigma_px=0`
    returns a float32 copy of the image."""
    _check_sigma(sigma_px)
    blurred = _check_grey("image", image)
    if not sigma_px:
        return blurred.copy()
    radius = int(4.0 * sigma_px + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_px) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    height, width = blurred.shape
    rows = np.pad(blurred, [(radius, radius), (0, 0)], mode="edge")
    blurred = sum(tap * rows[i : i + height] for i, tap in enumerate(taps))
    columns = np.pad(blurred, [(0, 0), (radius, radius)], mode="edge")
    return sum(tap * columns[:, i : i + width] for i, tap in enumerate(taps))


def blend_census(scores, left_grey, right_grey, weight, window=CENSUS_WINDOW, sigma_px=0.0):
    """In place: the census similarity blended into a correlation volume.

    Where left pixel (y, x) at disparity d matches right pixel (y, x - d)
    inside the right view, `scores[y, x, d]` becomes `(1 - weight) *
    scores + weight * (1 - 2 * hamming / bits)`: the Hamming distance of
    the two census codes, on the correlation's scale [-1, 1]. The learned
    features decide where the image has structure; the census, which sees
    only the order of grey levels, keeps the match where the two cameras'
    exposure and response differ (Hirschmüller & Scharstein 2009 found it
    the most robust cost to such differences). Out-of-view entries are
    left alone. `weight=0` leaves the volume as it is. Returns it.

    `sigma_px` blurs both grey views by a Gaussian before their census: a
    neighbour nearly as bright as the centre flips its bit with sensor
    noise or JPEG, independently in each camera, and a slight blur makes
    those comparisons agree again (0: no blur).

    Reference:
        Hirschmüller & Scharstein, "Evaluation of Stereo Matching Costs on
        Images with Radiometric Differences", PAMI 2009.
    """
    if not 0 <= weight <= 1:
        raise ParameterError("weight", f"must be in [0, 1], received {weight}")
    _check_sigma(sigma_px)
    left_grey, right_grey = (
        _check_grey("left_grey", left_grey),
        _check_grey("right_grey", right_grey),
    )
    if right_grey.shape != left_grey.shape or left_grey.shape != scores.shape[:2]:
        raise ParameterError(
            "right_grey",
            f"must have left_grey's shape and the volume's (h, w) {scores.shape[:2]}, "
            f"received {left_grey.shape} and {right_grey.shape}",
        )
    if weight:
        bits = window[0] * window[1] - 1
        if sigma_px:
            left_grey, right_grey = (gaussian_blur(g, sigma_px) for g in (left_grey, right_grey))
        codes = [census_transform(grey, window) for grey in (left_grey, right_grey)]
        _kernels.blend_census(scores, *codes, bits, float(weight))
    return scores


def right_view_cost(cost, out_of_view_quantile=None):
    """In place: the left view's (h, w, D) cost becomes the right view's.

    Right pixel xr at disparity d is left pixel xr + d. Disparities whose
    match lies beyond the left image get the worst cost, 2, or with
    `out_of_view_quantile` the pixel's quantile of its in-view scores, as
    `neutralize_out_of_view` gives the left view. Returns the volume.
    """
    _kernels.shift_to_right_view(cost, np.float32(2.0))
    # Mirrored, column x of the right view has x + 1 in-view disparities, as
    # the left view's has; a score's quantile q is the cost's 1 - q.
    if out_of_view_quantile is not None:
        neutralize_out_of_view(cost[:, ::-1], 1.0 - out_of_view_quantile)
    return cost


def right_view_winners(cost, rows=64):
    """The right view's winners read from the left view's (h, w, D) cost:
    right pixel x at disparity d is left pixel x + d, so this is the volume
    read along a skewed (strided) view, `rows` rows at a time (no second
    volume)."""
    h, w, depth = cost.shape
    best_d = np.empty((h, w), np.int64)
    band = np.full((rows, w + depth, depth), np.inf, np.float32)
    for top in range(0, h, rows):
        n = min(rows, h - top)
        band[:n, :w] = cost[top : top + n]
        item = band.itemsize
        # Element (y, x, d) of this view is band[y, x + d, d].
        skewed = np.lib.stride_tricks.as_strided(
            band,
            shape=(n, w, depth),
            strides=((w + depth) * depth * item, depth * item, (depth + 1) * item),
            writeable=False,
        )
        best_d[top : top + n] = skewed.argmin(axis=-1)
    return best_d


def remove_speckles(disparity, max_size, max_step_px):
    """NaN over the speckles of a disparity map: 4-connected regions (a step
    of at most `max_step_px` joins two pixels) of at most `max_size` pixels,
    as OpenCV's `filterSpeckles`. `max_size=0` removes nothing and returns
    the map itself."""
    if max_size <= 0:
        return disparity
    speckle = _kernels.speckle_mask(
        np.ascontiguousarray(disparity, np.float32), int(max_size), float(max_step_px)
    )
    return np.where(speckle, np.nan, disparity).astype(disparity.dtype)


def median3(disparity):
    """3x3 median of the finite neighbours of each finite pixel (numpy's
    `nanmedian`, the image's edge repeated); NaN stays NaN."""
    return _kernels.median3(np.ascontiguousarray(disparity, np.float32))


def _nearest_valid_columns(valid):
    """Per pixel, the column of the nearest valid pixel at or left of it on
    its row (-1 if none) and at or right of it (the width if none)."""
    width = valid.shape[1]
    columns = np.arange(width, dtype=np.int32)
    before = np.maximum.accumulate(np.where(valid, columns, -1), axis=1)
    after = np.minimum.accumulate(np.where(valid, columns, width)[:, ::-1], axis=1)[:, ::-1]
    return before, after


def row_fill(disparity):
    """Every hole takes the smaller (farther) of the nearest valid values to
    its left and right on its row: the plain occlusion fill, which
    `fill_occlusions` refines."""
    height, width = disparity.shape
    before, after = _nearest_valid_columns(np.isfinite(disparity))
    rows = np.arange(height)[:, None]
    left = np.where(before >= 0, disparity[rows, np.clip(before, 0, None)], np.inf)
    right = np.where(after < width, disparity[rows, np.clip(after, None, width - 1)], np.inf)
    filled = np.where(np.isfinite(disparity), disparity, np.minimum(left, right))
    return np.where(np.isfinite(filled), filled, np.nan).astype(np.float32)


# The fill's chosen settings: `fill_occlusions`' defaults, so `densify`'s,
# and `StereoMatcher`'s `fill_*` defaults.
FILL_EDGE_PX = 1
FILL_BEHIND_BOTH_PX = 1.0
FILL_COLOR_PER_PX = 2.0
FILL_MEDIAN_RADIUS_PX = 10
FILL_MEDIAN_COLOR_SIGMA = 20.0
FILL_MEDIAN_DISTANCE_SIGMA_PX = 5.0


def fill_occlusions(
    disparity,
    image=None,
    edge_px=FILL_EDGE_PX,
    behind_both_px=FILL_BEHIND_BOTH_PX,
    color_per_px=FILL_COLOR_PER_PX,
    median_radius_px=FILL_MEDIAN_RADIUS_PX,
    median_color_sigma=FILL_MEDIAN_COLOR_SIGMA,
    median_distance_sigma_px=FILL_MEDIAN_DISTANCE_SIGMA_PX,
):
    """Fills a disparity map's holes (NaN) from the surface behind them.

    What the right camera cannot see belongs to the farther surface, just
    left of the nearer one. A hole takes the farther of the nearest valid
    values on its row or, where its left neighbour is the nearer one, the
    farther of those above and below. A hole at the left edge takes the
    nearest valid pixel right, above or below, by distance and, with
    `image`, by colour, so an object reaching into that band keeps its own.

    With `median_radius_px`, each filled pixel then takes the weighted
    median of the filled map around it, weighing each neighbour by its
    colour likeness and nearness: a row's fill knows only the two ends of
    its hole, while a surface hidden between them (a leaf between a nearer
    one and the background) is often seen, in its own colour, above or
    below (Hosni et al. 2013's post-processing of the filled pixels).

    Args:
        disparity: (h, w) map, NaN where unknown.
        image: optional left view, (h, w, C) or grey (h, w), 0-255.
        edge_px: the valid pixels next to a hole on its row that are filled
            with it (their matching windows straddle the occlusion).
        behind_both_px: how much nearer the left neighbour must be for a
            fill from above and below; None: never.
        color_per_px: the colour difference (summed over channels) that one
            pixel of distance weighs as; None: by distance alone, `image`
            unused (the median weighs no colour either).
        median_radius_px: the weighted median's window, (2 r + 1)^2 pixels;
            0: none.
        median_color_sigma: the colour difference (summed over channels,
            0-255 levels) that weighs a neighbour 1/e as much; with no
            `image`, colour is not weighed.
        median_distance_sigma_px: the distance that weighs a neighbour 1/e
            as much.

    Returns:
        float32 (h, w), NaN where no valid pixel is on the row or column.

    Reference:
        Hosni, Rhemann, Bleyer, Rother & Gelautz, "Fast Cost-Volume
        Filtering for Visual Correspondence and Beyond", PAMI 2013.
    """
    _check_median(median_radius_px, median_color_sigma, median_distance_sigma_px)
    if color_per_px is None:
        image, color_per_px = None, 0.0
    height, width = disparity.shape
    valid = np.isfinite(disparity)
    hole = ~valid
    for step in range(1, edge_px + 1):
        valid[:, step:] &= ~hole[:, :-step]
        valid[:, :-step] &= ~hole[:, step:]
    rows, columns = np.ogrid[:height, :width]
    left_x, right_x = _nearest_valid_columns(valid)
    up_y, down_y = (index.T for index in _nearest_valid_columns(valid.T))
    has_left, has_right = left_x >= 0, right_x < width
    has_up, has_down = up_y >= 0, down_y < height

    def value(found, y, x):
        y, x = np.clip(y, 0, height - 1), np.clip(x, 0, width - 1)
        return np.where(found, disparity[y, x], np.inf)

    left, right = value(has_left, rows, left_x), value(has_right, rows, right_x)
    up, down = value(has_up, up_y, columns), value(has_down, down_y, columns)
    along_row = np.minimum(left, right)
    if behind_both_px is not None:
        behind_both = has_left & has_right & (left > right + behind_both_px) & (has_up | has_down)
        along_row = np.where(behind_both, np.minimum(up, down), along_row)
    filled = np.where(valid, disparity, along_row)
    # Holes at the left edge: the nearest source right, above or below.
    ys, xs = np.nonzero(~valid & ~has_left)
    source_y = np.stack([ys, up_y[ys, xs], down_y[ys, xs]])
    source_x = np.stack([right_x[ys, xs], xs, xs])
    found = np.stack([has_right[ys, xs], has_up[ys, xs], has_down[ys, xs]])
    distance = np.where(found, np.abs(source_y - ys) + np.abs(source_x - xs), np.inf)
    source_y, source_x = np.clip(source_y, 0, height - 1), np.clip(source_x, 0, width - 1)
    if image is not None:
        image = _as_channels(image, disparity.shape, "image", "the left view")
        color = np.abs(image[source_y, source_x] - image[ys, xs]).sum(axis=-1)
        distance = color + color_per_px * distance
    sources = np.where(found, disparity[source_y, source_x], np.inf)
    filled[ys, xs] = np.take_along_axis(sources, distance.argmin(axis=0)[None], axis=0)[0]
    filled = np.where(np.isfinite(filled), filled, np.nan).astype(np.float32)
    if median_radius_px:
        # Colour 0 everywhere when no image is given: nearness alone.
        colors = np.zeros((height, width, 1), np.float32) if image is None else image
        filled = _kernels.weighted_median(
            filled,
            ~valid,
            np.ascontiguousarray(colors, np.float32),
            int(median_radius_px),
            float(median_color_sigma),
            float(median_distance_sigma_px),
        )
    return filled


def _check_median(radius_px, color_sigma, distance_sigma_px):
    if not (isinstance(radius_px, (int, np.integer)) and radius_px >= 0):
        raise ParameterError("median_radius_px", f"must be an integer >= 0, received {radius_px!r}")
    for name, value in (
        ("median_color_sigma", color_sigma),
        ("median_distance_sigma_px", distance_sigma_px),
    ):
        if not (isinstance(value, (int, float, np.number)) and np.isfinite(value) and value > 0):
            raise ParameterError(name, f"must be a finite number > 0, received {value!r}")


def color_mismatch(disparity, left, right):
    """How unlike its match each matched pixel looks: the colour difference
    between the left view's pixel and the right view's pixel it matched (at
    `x - round(disparity)`), summed over channels, after each channel of the
    right view is fitted to the left's by a gain and an offset (least
    squares over the matched pixels), so that cameras that differ in
    exposure do not look unlike everywhere.

    Args:
        disparity: (h, w) map, NaN where unmatched.
        left, right: the views, (h, w, C) or grey (h, w), 0-255.

    Returns:
        float32 (h, w), in levels of the views; NaN where unmatched.
    """
    left = _as_channels(left, disparity.shape, "left", "the left view")
    right = _as_channels(right, disparity.shape, "right", "the right view")
    height, width = disparity.shape
    matched = np.isfinite(disparity)
    columns = np.arange(width)[None, :] - np.rint(np.where(matched, disparity, 0)).astype(np.int64)
    seen = right[np.arange(height)[:, None], np.clip(columns, 0, width - 1)]
    mismatch = np.zeros((height, width), np.float32)
    for channel in range(left.shape[-1]):
        x, y = seen[..., channel][matched], left[..., channel][matched]
        gain, offset = 1.0, 0.0
        if x.size > 1 and np.ptp(x) > 0:
            gain, offset = np.polyfit(x.astype(np.float64), y.astype(np.float64), 1)
        mismatch += np.abs(left[..., channel] - (gain * seen[..., channel] + offset)).astype(
            np.float32
        )
    return np.where(matched, mismatch, np.nan).astype(np.float32)


def recheck_colors(
    disparity,
    left,
    right,
    levels,
    median_radius_px=FILL_MEDIAN_RADIUS_PX,
    median_color_sigma=FILL_MEDIAN_COLOR_SIGMA,
    median_distance_sigma_px=FILL_MEDIAN_DISTANCE_SIGMA_PX,
):
    """The colour check: each matched pixel that looks more than `levels`
    unlike its match (`color_mismatch`) takes the colour-weighted median of
    the matched pixels around it, as the fill's median weighs them.

    The left-right check passes a background pixel beside a near surface
    that the aggregation spread over it: both views agree on the near
    disparity there, but the right view's pixel it points to shows another
    point of the background, in another colour.

    Args:
        disparity: (h, w) map, NaN where unmatched (stays NaN).
        left, right: the views, (h, w, C) or grey (h, w), 0-255.
        levels: the largest `color_mismatch` a match keeps its value with;
            `math.inf`: none re-estimated.
        median_radius_px: the median's window, (2 r + 1)^2 pixels
            (`fill_occlusions`' `median_radius_px`; 0: none re-estimated).
        median_color_sigma: the colour difference that weighs a neighbour
            1/e as much.
        median_distance_sigma_px: the distance that weighs a neighbour 1/e
            as much.

    Returns:
        float32 (h, w).
    """
    if not (is_number(levels) and not np.isnan(levels) and levels >= 0):
        raise ParameterError(
            "levels", f"must be a number >= 0 (math.inf: none), received {levels!r}"
        )
    _check_median(median_radius_px, median_color_sigma, median_distance_sigma_px)
    disparity = np.ascontiguousarray(disparity, np.float32)
    if np.isinf(levels) or not median_radius_px:
        return disparity.copy()
    left = np.ascontiguousarray(_as_channels(left, disparity.shape, "left", "the left view"))
    # Unmatched pixels' mismatch is NaN, never above the levels.
    suspect = color_mismatch(disparity, left, right) > levels
    return _kernels.weighted_median(
        disparity,
        suspect,
        left,
        int(median_radius_px),
        float(median_color_sigma),
        float(median_distance_sigma_px),
    )


def _as_channels(view, shape, name, what):
    """A view as float32 (h, w, C), a grey one as one channel; the argument
    `name` must be `what`, of the disparity's `shape`."""
    view = np.asarray(view, np.float32)
    if view.ndim == 2:  # grey levels: one channel
        view = view[..., None]
    if view.ndim != 3 or view.shape[:2] != tuple(shape):
        raise ParameterError(
            name,
            f"must be {what}, {shape[0]}x{shape[1]} pixels like the disparity, "
            f"received shape {view.shape}",
        )
    return view


def densify(disparity, image=None):
    """A map with holes made dense as `StereoMatcher` makes its own:
    `median3(fill_occlusions(disparity, image))`. For comparing other
    methods' maps at the same density."""
    return median3(fill_occlusions(disparity, image=image))


def bad_pixel_rate(estimate, truth, threshold_px) -> float:
    """Fraction of the ground truth's known (finite) pixels whose estimate is
    missing or off by more than `threshold_px` (Middlebury's bad-N)."""
    known = np.isfinite(truth)
    off = np.abs(np.nan_to_num(estimate, nan=-1e9) - truth) > threshold_px
    wrong = ~np.isfinite(estimate) | off
    return float(wrong[known].mean())
