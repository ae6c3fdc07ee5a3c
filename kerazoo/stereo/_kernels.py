"""Compiled loops of the stereo matching (numba): semi-global aggregation,
the right view's cost, the winners with their parabola, the out-of-view
quantile, the census cost, the speckle filter, the 3x3 median, the
fill's weighted median and the cosine correlation of two views' features.
SGM walks a volume pixel after pixel along a path, which numpy can only do
as one call per step on whole lines, each a pass over memory. Compiled on
first use and cached on disk (`cache=True`), so later runs only load them.

Private to `kerazoo.stereo`, whose `matching` module documents what they
compute; `tests/stereo/test_matching.py` checks them against plain
definitions. `warm_up` runs each on a tiny input, so that a first run
compiles (or loads from the cache) before the real work, and says so.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

COMPILING = "compiling the matching kernels (once: they are cached on disk)"
# Pads the disparity axis of a path's previous costs, so that the +-1
# neighbours need no bounds test and the loops vectorise. Finite, so the
# "no infinities" fast-math flag holds: BIG + anything stays far above any cost.
_BIG = np.float32(1e30)
# Fast-math without reassociation: sums keep numpy's order, results stay
# equal to the plain recurrence's.
_FAST = {"nnan", "ninf", "nsz", "arcp", "contract"}


@njit(inline="always", fastmath=_FAST)
def _jump_penalty(guide, y, x, from_y, from_x, p1, p2, edge, guided):
    if not guided:
        return p2
    step = abs(guide[y, x] - guide[from_y, from_x])
    return max(p1 * np.float32(1.5), p2 / (np.float32(1.0) + step / edge))


@njit(inline="always", fastmath=_FAST)
def _arrive(previous, current, cost, jump, p1):
    """One step of Hirschmueller's recurrence: `current[1:-1]` becomes
    `cost` plus the cheapest way to arrive from `previous` (padded with _BIG
    at both ends), minus the smallest previous cost."""
    depth = cost.shape[0]
    low = previous[1]
    for d in range(2, depth + 1):
        low = min(low, previous[d])
    low_jump = low + jump
    for d in range(1, depth + 1):
        best = min(min(previous[d], low_jump), min(previous[d - 1], previous[d + 1]) + p1)
        current[d] = cost[d - 1] + best - low


@njit(parallel=True, cache=True, fastmath=_FAST)
def add_row_paths(cost, total, guide, p1, p2, edge, guided):
    """total += the left-to-right and right-to-left paths (rows in parallel)."""
    height, width, depth = cost.shape
    for y in prange(height):
        previous = np.full(depth + 2, _BIG, np.float32)
        current = np.full(depth + 2, _BIG, np.float32)
        for backward in range(2):
            for k in range(width):
                x = width - 1 - k if backward else k
                if k == 0:
                    current[1:-1] = cost[y, x]
                else:
                    from_x = x + 1 if backward else x - 1
                    jump = _jump_penalty(guide, y, x, y, from_x, p1, p2, edge, guided)
                    _arrive(previous, current, cost[y, x], jump, p1)
                for d in range(depth):  # a loop: `+=` on a slice allocates
                    total[y, x, d] += current[d + 1]
                previous, current = current, previous


# Adjacent chains walked together by one thread: at each row their pixels
# are adjacent columns, so a step reads one contiguous run of the volume.
_CHAINS_PER_BLOCK = 64


@njit(parallel=True, cache=True, fastmath=_FAST)
def add_column_paths(
    cost, total, guide, p1, p2, edge, guided, column_step, block_size=_CHAINS_PER_BLOCK
):
    """total += the paths moving one row down and `column_step` (-1, 0, 1)
    columns right per step, and their opposites.

    Such a path stays on one chain of pixels, `x - column_step * y = c`, and
    chains are independent: blocks of adjacent chains run in parallel, in
    ONE parallel region. (A region per row would make every row wait for
    the slowest thread, which on a busy machine is one not scheduled.)
    """
    height, width, depth = cost.shape
    first = -(height - 1) if column_step == 1 else 0
    count = width if column_step == 0 else width + height - 1
    blocks = (count + block_size - 1) // block_size
    for block in prange(blocks):
        previous = np.full((block_size, depth + 2), _BIG, np.float32)
        current = np.full((block_size, depth + 2), _BIG, np.float32)
        start = first + block * block_size
        chains = min(block_size, first + count - start)
        for upward in range(2):
            for k in range(height):
                y = height - 1 - k if upward else k
                from_y = y + 1 if upward else y - 1
                for i in range(chains):
                    x = start + i + column_step * y
                    if x < 0 or x >= width:
                        continue
                    from_x = x + column_step if upward else x - column_step
                    if k == 0 or from_x < 0 or from_x >= width:  # a path starts here
                        current[i, 1:-1] = cost[y, x]
                    else:
                        jump = _jump_penalty(guide, y, x, from_y, from_x, p1, p2, edge, guided)
                        _arrive(previous[i], current[i], cost[y, x], jump, p1)
                    for d in range(depth):
                        total[y, x, d] += current[i, d + 1]
                previous, current = current, previous


@njit(parallel=True, cache=True)
def shift_to_right_view(cost, out_of_view_cost):
    """In place: cost[y, x, d] = cost[y, x + d, d], or `out_of_view_cost`
    where x + d is beyond the image. Left to right, a pixel reads only
    columns not yet rewritten."""
    height, width, depth = cost.shape
    for y in prange(height):
        for x in range(width):
            for d in range(1, depth):
                cost[y, x, d] = cost[y, x + d, d] if x + d < width else out_of_view_cost


@njit(parallel=True, cache=True)
def winners(cost):
    """Per pixel, the first disparity of least cost (numpy's argmin) and the
    vertex of the parabola through its cost and its neighbours', clipped to
    +-0.5 (none at the range's ends or where the parabola opens downwards)."""
    height, width, depth = cost.shape
    best = np.empty((height, width), np.int64)
    refined = np.empty((height, width), np.float32)
    half, tiny = np.float32(0.5), np.float32(1e-9)
    for y in prange(height):
        for x in range(width):
            c = cost[y, x]
            k = 0
            for d in range(1, depth):
                if c[d] < c[k]:
                    k = d
            delta = np.float32(0.0)
            if 0 < k < depth - 1:
                curvature = c[k - 1] - np.float32(2.0) * c[k] + c[k + 1]
                if curvature > tiny:
                    delta = min(max(half * (c[k - 1] - c[k + 1]) / curvature, -half), half)
            best[y, x] = k
            refined[y, x] = np.float32(k) + delta
    return best, refined


@njit(parallel=True, cache=True)
def fill_out_of_view(volume, quantile):
    """In place: volume[y, x, x + 1:] = the `quantile` of volume[y, x, :x + 1]
    (numpy's linear method), for the columns x < depth - 1."""
    height, width, depth = volume.shape
    for y in prange(height):
        for x in range(min(depth - 1, width)):
            values = np.sort(volume[y, x, : x + 1])
            position = quantile * x  # x + 1 values: the last is at index x
            below = min(int(position), x)
            above = min(below + 1, x)
            t = np.float32(position - below)
            low, high = values[below], values[above]
            # numpy's lerp, exact at both ends.
            value = low + (high - low) * t if t < 0.5 else high - (high - low) * (np.float32(1) - t)
            for d in range(x + 1, depth):
                volume[y, x, d] = value


@intrinsic
def _popcount(typingctx, value):
    """The set bits of a uint64: LLVM's ctpop, one instruction where the CPU
    has one; the blend counts bits at every pixel and disparity, and a loop
    over the bits would cost more than SGM itself."""
    if value != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.uint64(types.uint64), codegen


@njit(parallel=True, cache=True)
def census_transform(grey, radius_y, radius_x):
    """Per pixel, one bit per other pixel of its window (row by row, the
    image's edge repeated): 1 where that neighbour is darker than the
    centre, packed into a uint64 (first neighbour in the highest bit)."""
    height, width = grey.shape
    codes = np.zeros((height, width), np.uint64)
    one = np.uint64(1)
    for y in prange(height):
        for x in range(width):
            centre = grey[y, x]
            code = np.uint64(0)
            for dy in range(-radius_y, radius_y + 1):
                row = min(max(y + dy, 0), height - 1)
                for dx in range(-radius_x, radius_x + 1):
                    if dy != 0 or dx != 0:
                        column = min(max(x + dx, 0), width - 1)
                        code = (code << one) | np.uint64(grey[row, column] < centre)
            codes[y, x] = code
    return codes


@njit(parallel=True, cache=True)
def blend_census(scores, left_codes, right_codes, bits, weight):
    """In place, where x - d is inside the right view: scores[y, x, d] =
    (1 - weight) * scores[y, x, d] + weight * (1 - 2 * hamming / bits), the
    Hamming distance of left (y, x)'s census code and right (y, x - d)'s."""
    height, width, depth = scores.shape
    keep, share = np.float32(1.0 - weight), np.float32(weight)
    per_bit = np.float32(2.0 / bits)
    for y in prange(height):
        for x in range(width):
            code = left_codes[y, x]
            for d in range(min(depth, x + 1)):
                count = _popcount(code ^ right_codes[y, x - d])
                similarity = np.float32(1.0) - per_bit * np.float32(count)
                scores[y, x, d] = keep * scores[y, x, d] + share * similarity


@njit(cache=True)
def speckle_mask(disparity, max_size, max_difference):
    """True over the 4-connected regions (neighbours at most `max_difference`
    apart; NaN joins nothing) of at most `max_size` pixels: OpenCV's
    filterSpeckles, by one flood fill per region."""
    height, width = disparity.shape
    seen = np.zeros((height, width), np.bool_)
    speckle = np.zeros((height, width), np.bool_)
    region = np.empty(height * width, np.int64)  # the region's pixels, also the fill's queue
    for start in range(height * width):
        y0, x0 = start // width, start % width
        if seen[y0, x0] or not np.isfinite(disparity[y0, x0]):
            continue
        seen[y0, x0] = True
        region[0] = start
        size, done = 1, 0
        while done < size:
            y, x = region[done] // width, region[done] % width
            done += 1
            here = disparity[y, x]
            for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                ny, nx = y + dy, x + dx
                if 0 <= ny < height and 0 <= nx < width and not seen[ny, nx]:
                    there = disparity[ny, nx]
                    if np.isfinite(there) and abs(there - here) <= max_difference:
                        seen[ny, nx] = True
                        region[size] = ny * width + nx
                        size += 1
        if size <= max_size:
            for i in range(size):
                speckle[region[i] // width, region[i] % width] = True
    return speckle


@njit(parallel=True, cache=True)
def median3(disparity):
    """The median of each finite pixel's finite 3x3 neighbours (the image's
    edge repeated), the mean of the middle two for an even count (numpy's
    nanmedian); NaN stays NaN."""
    height, width = disparity.shape
    out = np.full((height, width), np.nan, np.float32)
    for y in prange(height):
        window = np.empty(9, np.float32)
        for x in range(width):
            if not np.isfinite(disparity[y, x]):
                continue
            n = 0
            for dy in range(-1, 2):
                for dx in range(-1, 2):
                    v = disparity[min(max(y + dy, 0), height - 1), min(max(x + dx, 0), width - 1)]
                    if np.isfinite(v):  # insertion sort as it comes
                        i = n
                        while i > 0 and window[i - 1] > v:
                            window[i] = window[i - 1]
                            i -= 1
                        window[i] = v
                        n += 1
            if n % 2:
                out[y, x] = window[n // 2]
            else:
                out[y, x] = (window[n // 2 - 1] + window[n // 2]) / np.float32(2)
    return out


@njit(cache=True)
def _weighted_select(values, weights, n, half):
    """The smallest of `values[:n]` whose own and smaller values' weights
    reach `half` (a weighted median), by three-way quickselect: linear on
    average, where sorting the window would be n log n. Reorders both."""
    low, high = 0, n - 1
    while low < high:
        pivot = values[(low + high) // 2]
        less, i, greater = low, low, high
        while i <= greater:
            value = values[i]
            if value < pivot:
                values[i], values[less] = values[less], value
                weights[i], weights[less] = weights[less], weights[i]
                less += 1
                i += 1
            elif value > pivot:
                values[i], values[greater] = values[greater], value
                weights[i], weights[greater] = weights[greater], weights[i]
                greater -= 1
            else:
                i += 1
        below = np.float32(0)
        for k in range(low, less):
            below += weights[k]
        if below >= half:
            high = less - 1
            continue
        equal = np.float32(0)
        for k in range(less, greater + 1):
            equal += weights[k]
        if below + equal >= half:
            return pivot
        half -= below + equal
        low = greater + 1
    return values[low]


# The weighted median first finds which of this many equal ranges of the
# window's values holds it, from the ranges' weights (one pass), and selects
# only among that range's values: most of the window is never reordered.
_MEDIAN_BINS = 32


@njit(cache=True)
def _binned_weighted_select(values, weights, n, half, low, high, bins, bin_weights):
    """`_weighted_select` of `values[:n]`, which lie in [low, high]: the
    range of values that holds the weighted median, then the select within
    it. `bins` (n) and `bin_weights` (_MEDIAN_BINS) are scratch."""
    if high <= low:
        return low
    scale = np.float32(_MEDIAN_BINS) / (high - low)
    bin_weights[:] = 0
    for i in range(n):
        b = min(int((values[i] - low) * scale), _MEDIAN_BINS - 1)
        bins[i] = b
        bin_weights[b] += weights[i]
    below = np.float32(0)
    chosen = _MEDIAN_BINS - 1
    for b in range(_MEDIAN_BINS):
        if below + bin_weights[b] >= half:
            chosen = b
            break
        below += bin_weights[b]
    kept = 0
    for i in range(n):
        if bins[i] == chosen:
            values[kept] = values[i]
            weights[kept] = weights[i]
            kept += 1
    if kept == 0:  # rounding carried the half past the last range: the largest
        return high
    return _weighted_select(values, weights, kept, half - below)


@njit(parallel=True, cache=True)
def weighted_median(disparity, targets, image, radius, color_sigma, distance_sigma):
    """Each target pixel takes the weighted median of the finite pixels of
    its (2 radius + 1)^2 window, weighing exp(-|colour difference| /
    color_sigma - distance / distance_sigma) (colour summed over channels);
    the others keep their value."""
    height, width, channels = image.shape
    out = disparity.copy()
    side = 2 * radius + 1
    # Both terms from tables: the distance by offset, the colour by level
    # (8-bit views differ by whole levels; other levels take the exp).
    near = np.empty((side, side), np.float32)
    for dy in range(side):
        for dx in range(side):
            offset = np.sqrt(np.float32((dy - radius) ** 2 + (dx - radius) ** 2))
            near[dy, dx] = np.float32(np.exp(-offset / distance_sigma))
    alike = np.empty(255 * channels + 1, np.float32)
    for level in range(alike.size):
        alike[level] = np.float32(np.exp(-np.float32(level) / color_sigma))
    # Holes gather in a few rows: the targets, not the rows, are shared out.
    ys, xs = np.nonzero(targets)
    chunks = 64
    per_chunk = (ys.size + chunks - 1) // chunks
    for chunk in prange(chunks):
        values = np.empty(side * side, np.float32)
        weights = np.empty(side * side, np.float32)
        bins = np.empty(side * side, np.int32)
        bin_weights = np.empty(_MEDIAN_BINS, np.float32)
        for t in range(chunk * per_chunk, min(ys.size, (chunk + 1) * per_chunk)):
            y, x = ys[t], xs[t]
            n = 0
            total = np.float32(0)
            low, high = np.float32(np.inf), np.float32(-np.inf)
            for yy in range(max(y - radius, 0), min(y + radius + 1, height)):
                for xx in range(max(x - radius, 0), min(x + radius + 1, width)):
                    value = disparity[yy, xx]
                    if not np.isfinite(value):
                        continue
                    color = np.float32(0)
                    for c in range(channels):
                        color += abs(image[yy, xx, c] - image[y, x, c])
                    level = int(color)
                    if level == color and level < alike.size:
                        likeness = alike[level]
                    else:
                        likeness = np.float32(np.exp(-color / color_sigma))
                    weight = near[yy - y + radius, xx - x + radius] * likeness
                    values[n] = value
                    weights[n] = weight
                    total += weight
                    low, high = min(low, value), max(high, value)
                    n += 1
            if n > 0 and total > 0:
                half = total / np.float32(2)
                out[y, x] = _binned_weighted_select(
                    values, weights, n, half, low, high, bins, bin_weights
                )
    return out


@njit(inline="always", fastmath=True)
def _unit_row(row, out):
    """Each feature vector of a row `(w, c)`, less its mean over channels,
    scaled to unit length (CorrelationVolume(normalize=True)'s `_prepare`)."""
    width, channels = row.shape
    for x in range(width):
        mean = np.float32(0.0)
        for c in range(channels):
            mean += np.float32(row[x, c])
        mean /= np.float32(channels)
        squares = np.float32(0.0)
        for c in range(channels):
            value = np.float32(row[x, c]) - mean
            out[x, c] = value
            squares += value * value
        scale = np.float32(1.0) / np.sqrt(squares + np.float32(1e-6))
        for c in range(channels):
            out[x, c] *= scale


@njit(inline="always", fastmath=True)
def _correlate_row(left, right, max_disparity, out):
    width, channels = left.shape
    for x in range(width):
        for d in range(max_disparity + 1):
            if x < d:
                out[x, d] = -1.0
            else:
                total = np.float32(0.0)
                for c in range(channels):
                    total += left[x, c] * right[x - d, c]
                out[x, d] = total


@njit(parallel=True, cache=True, fastmath=True)
def cosine_correlation(left, right, max_disparity):
    """The volume `(h, w, max_disparity + 1)` of two views' float32 features
    `(h, w, c)`: the cosine of left (y, x) and right (y, x - d) after each
    vector's mean over channels is removed, -1 where x - d is outside the
    right view (CorrelationVolume(normalize=True)'s definition). Each row is
    normalised into a buffer as it is correlated, so the features are read
    once and no normalised copy of them is ever made. Full fast-math: the
    channel sums vectorise, in an order of their own."""
    height, width, channels = left.shape
    out = np.empty((height, width, max_disparity + 1), np.float32)
    for y in prange(height):
        left_row = np.empty((width, channels), np.float32)
        right_row = np.empty((width, channels), np.float32)
        _unit_row(left[y], left_row)
        _unit_row(right[y], right_row)
        _correlate_row(left_row, right_row, max_disparity, out[y])
    return out


@njit(inline="always")
def _widened(row_bits, bits):
    """A row of bfloat16 bits `(w, c)` as float32, in the uint32 buffer
    `bits`: a bfloat16 is the top half of a float32."""
    width, channels = row_bits.shape
    for x in range(width):
        for c in range(channels):
            bits[x, c] = np.uint32(row_bits[x, c]) << np.uint32(16)
    return bits.view(np.float32)


@njit(parallel=True, cache=True, fastmath=True)
def bfloat16_cosine_correlation(left_bits, right_bits, max_disparity):
    """`cosine_correlation` of bfloat16 features given as their uint16 bits
    (numba has no bfloat16): a bfloat16 is the top half of a float32, so each
    row is widened by a shift, not by a converting copy of the whole map."""
    height, width, channels = left_bits.shape
    out = np.empty((height, width, max_disparity + 1), np.float32)
    for y in prange(height):
        bits = np.empty((width, channels), np.uint32)
        left_row = np.empty((width, channels), np.float32)
        right_row = np.empty((width, channels), np.float32)
        _unit_row(_widened(left_bits[y], bits), left_row)
        _unit_row(_widened(right_bits[y], bits), right_row)
        _correlate_row(left_row, right_row, max_disparity, out[y])
    return out


def warm_up(notify=None, after_s=2.0):
    """Runs every kernel once on a tiny input of the real inputs' types, so
    that compiling them (first run) or loading them from numba's cache
    happens here. `notify(message)` is called if that takes over `after_s`
    seconds, i.e. when they are being compiled."""
    timer = None
    if notify is not None:
        timer = threading.Timer(after_s, notify, (COMPILING,))
        timer.daemon = True
        timer.start()
    try:
        cost = np.ones((2, 3, 2), np.float32)
        total = np.zeros_like(cost)
        guide = np.zeros((2, 3), np.float32)
        one = np.float32(1.0)
        add_row_paths(cost, total, guide, one, one, one, True)
        add_column_paths(cost, total, guide, one, one, one, True, 1)
        winners(total)
        shift_to_right_view(total, one)
        median3(guide)
        speckle_mask(guide, 1, 1.0)
        cosine_correlation(cost, cost, 1)
        bits = np.zeros((2, 3, 2), np.uint16)
        bfloat16_cosine_correlation(bits, bits, 1)
        codes = census_transform(guide, 1, 1)
        blend_census(cost, codes, codes, 8, 0.5)
        weighted_median(guide, guide == 0, cost, 1, 10.0, 5.0)
    finally:
        if timer is not None:
            timer.cancel()
