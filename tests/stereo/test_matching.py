"""The matching steps of `kerazoo.stereo` (`matching`, `stem`): the shipped
stereo-trained weights, odd disparities at full resolution, semi-global
aggregation, the left-right check, speckles, the fill, the folded stem."""

import functools
import math
import os
import re

import keras
import numpy as np
import pytest

from kerazoo import weights as W
from kerazoo.app.demos.stereo_data import synthetic_pair
from kerazoo.errors import ParameterError
from kerazoo.layers import CorrelationVolume
from kerazoo.stereo import (
    StereoMatcher,
    _kernels,
    bad_pixel_rate,
    matching,
    prepare_pair,
    upsample_disparity,
)
from kerazoo.stereo import stem as stem_lib
from kerazoo.stereo.matcher import COLOR_CHECK_LEVELS
from kerazoo.stereo.stem import (
    STEM_CONVOLUTIONS,
    build_matching_model,
    fold_batch_norm,
    xception_stem,
)

from conftest import set_batch_norm_statistics

DATA = os.path.join(os.path.dirname(__file__), "..", "data")


# The Keras runtime: these tests check the network on every backend (the
# ONNX runtime's own tests are in test_runtimes.py).
@functools.cache
def _features(weights="stereo"):
    return StereoMatcher(weights, check_swapped=False, runtime="keras")


def _volume(left, right, max_disparity, weights="stereo"):
    views = prepare_pair(left, right)
    return _features(weights).correlate(*views, max_disparity=max_disparity), views


def _matcher(**settings):
    return StereoMatcher(check_swapped=False, runtime="keras", **settings)


def _match(left, right, max_disparity, weights="stereo", quality="fast", **settings):
    matcher = StereoMatcher(
        weights, max_disparity, check_swapped=False, runtime="keras", quality=quality, **settings
    )
    return matcher.compute(left, right).disparity, None


def test_shipped_stereo_weights_match_their_hash_and_load():
    path = W.resolve(stem_lib.STEREO_WEIGHTS, download=False)
    info = W.entry(stem_lib.STEREO_WEIGHTS)
    assert info["hash_algorithm"] == "sha256"
    assert W.verify(path, stem_lib.STEREO_WEIGHTS)["verified"]
    stem, label = stem_lib.load_stem("stereo")
    assert label == "stereo-trained" and stem.count_params() == 47_008


def test_trained_weights_beat_random_ones_on_a_generated_pair():
    # The networks alone: the census match would lift the random one.
    pair = synthetic_pair(height=120, width=160, seed=21, max_disparity=24)
    trained, _ = _match(pair.left, pair.right, 24, census_weight=0)
    random, _ = _match(pair.left, pair.right, 24, weights=None, census_weight=0)
    assert bad_pixel_rate(trained, pair.disparity, 2) < 0.5 * bad_pixel_rate(
        random, pair.disparity, 2
    )


@pytest.mark.parametrize("shift", [4, 5, 6, 7])
def test_fine_texture_shifted_by_odd_and_even_pixels_comes_back(shift):
    # A stride-2 grid would lose odd shifts of fine texture; the atrous stem must not.
    rng = np.random.default_rng(shift)
    right = rng.integers(0, 256, (48, 96, 3)).astype(np.uint8)
    left = np.roll(right, shift, axis=1)
    disparity, _ = _match(left, right, 16)
    inner = disparity[4:-4, 16:-4]
    assert (np.abs(inner - shift) <= 1).mean() > 0.97


def test_sgm_fills_textureless_pixels_from_their_neighbours():
    rng = np.random.default_rng(0)
    truth = np.full((30, 40), 5)
    truth[:, 20:] = 9
    cost = rng.uniform(0.4, 1.0, (30, 40, 16)).astype(np.float32)
    cost[np.arange(30)[:, None], np.arange(40)[None, :], truth] = 0.3
    # 30% of the pixels see no texture: every disparity costs about the same.
    flat = rng.random((30, 40)) < 0.3
    cost[flat, :] = rng.uniform(0.5, 0.55, (flat.sum(), 16))
    wta = np.abs(cost.argmin(-1) - truth) <= 1
    aggregated = np.abs(matching.sgm(cost, 0.3, 4.8).argmin(-1) - truth) <= 1
    assert wta.mean() < 0.8
    # (WTA gets a flat pixel within 1 px about 3 times in 16.)
    assert aggregated.mean() > 0.97 and aggregated[flat].mean() > 0.95


def _sgm_one_path_at_a_time(cost, p1, p2, guide, edge, paths):
    # Hirschmueller's recurrence written plainly: the reference for `stereo.sgm`.
    h, w, depth = cost.shape
    total = np.zeros_like(cost, dtype=np.float64)
    directions = [(0, 1), (0, -1), (1, 0), (-1, 0)]
    if paths == 8:
        directions += [(1, 1), (-1, -1), (1, -1), (-1, 1)]
    for dy, dx in directions:
        ys = range(h) if dy >= 0 else range(h - 1, -1, -1)
        xs = range(w) if dx >= 0 else range(w - 1, -1, -1)
        path = np.zeros_like(total)
        for y in ys:
            for x in xs:
                py, px = y - dy, x - dx
                if not (0 <= py < h and 0 <= px < w):
                    path[y, x] = cost[y, x]
                    continue
                prev = path[py, px]
                jump = max(p1 * 1.5, p2 / (1 + abs(guide[y, x] - guide[py, px]) / edge))
                for d in range(depth):
                    near = min(
                        prev[d - 1] if d > 0 else np.inf, prev[d + 1] if d < depth - 1 else np.inf
                    )
                    path[y, x, d] = (
                        cost[y, x, d] + min(prev[d], near + p1, prev.min() + jump) - prev.min()
                    )
        total += path
    return total / paths


@pytest.mark.parametrize("paths", [4, 8])
def test_sgm_is_the_plain_recurrence(paths):
    rng = np.random.default_rng(1)
    cost = rng.uniform(0, 2, (7, 9, 5)).astype(np.float32)
    guide = rng.uniform(0, 255, (7, 9)).astype(np.float32)
    fast = matching.sgm(cost, 0.1, 0.8, guide, 4.0, paths=paths)
    expected = _sgm_one_path_at_a_time(cost, 0.1, 0.8, guide, 4.0, paths)
    np.testing.assert_allclose(fast, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="`paths` must be 4 or 8, received 6"):
        matching.sgm(cost, 0.1, 0.8, paths=6)


@pytest.mark.parametrize("height, width", [(1, 1), (3, 200), (150, 2), (70, 70)])
def test_sgm_blocks_of_chains_cover_every_shape(height, width):
    # The diagonal walks run in blocks of adjacent chains: shapes narrower,
    # wider and taller than a block must all match the plain recurrence.
    rng = np.random.default_rng(height * 1000 + width)
    cost = rng.uniform(0, 2, (height, width, 3)).astype(np.float32)
    guide = rng.uniform(0, 255, (height, width)).astype(np.float32)
    fast = matching.sgm(cost, 0.1, 0.8, guide, 4.0, paths=8)
    expected = _sgm_one_path_at_a_time(cost, 0.1, 0.8, guide, 4.0, 8)
    np.testing.assert_allclose(fast, expected, rtol=1e-5, atol=1e-5)


def test_right_view_disparity_is_the_skewed_winner():
    rng = np.random.default_rng(2)
    cost = rng.uniform(0, 1, (70, 12, 6)).astype(np.float32)
    expected = np.zeros((70, 12), np.int64)
    for x in range(12):  # right pixel x at disparity d is left pixel x + d
        candidates = [cost[:, x + d, d] if x + d < 12 else np.full(70, np.inf) for d in range(6)]
        expected[:, x] = np.argmin(np.stack(candidates, axis=-1), axis=-1)
    np.testing.assert_array_equal(matching.right_view_winners(cost, rows=64), expected)


def test_out_of_view_disparities_get_the_quantile_of_the_in_view_scores():
    rng = np.random.default_rng(3)
    volume = rng.uniform(-1, 1, (4, 9, 6)).astype(np.float32)
    expected = volume.copy()
    for x in range(5):  # left x at d > x matches left of the right image
        in_view = volume[:, x, : x + 1]
        expected[:, x, x + 1 :] = np.quantile(in_view, 0.75, axis=-1, keepdims=True)
    out = matching.neutralize_out_of_view(volume.copy(), 0.75)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_array_equal(matching.neutralize_out_of_view(volume.copy(), None), volume)


def _plain_census(grey, rows, columns):
    padded = np.pad(grey, ((rows // 2,) * 2, (columns // 2,) * 2), mode="edge")
    h, w = grey.shape
    codes = np.zeros((h, w), np.uint64)
    for dy in range(rows):
        for dx in range(columns):
            if (dy, dx) != (rows // 2, columns // 2):
                darker = padded[dy : dy + h, dx : dx + w] < grey
                codes = (codes << np.uint64(1)) | darker.astype(np.uint64)
    return codes


@pytest.mark.parametrize("window", [(3, 3), (7, 7), (5, 9)])
def test_census_codes_are_the_plain_definition(window):
    grey = np.random.default_rng(5).integers(0, 6, (9, 13)).astype(np.float32)  # ties too
    codes = matching.census_transform(grey, window)
    np.testing.assert_array_equal(codes, _plain_census(grey, *window))


def test_census_codes_ignore_gain_offset_and_gamma():
    grey = np.random.default_rng(6).uniform(0, 255, (12, 16)).astype(np.float32)
    other_camera = 40 + 0.6 * 255 * (grey / 255) ** 1.8
    np.testing.assert_array_equal(
        matching.census_transform(grey), matching.census_transform(other_camera)
    )


def test_blend_census_is_the_plain_definition_in_view_only():
    rng = np.random.default_rng(7)
    left, right = rng.uniform(0, 255, (2, 8, 11)).astype(np.float32)
    scores = rng.uniform(-1, 1, (8, 11, 5)).astype(np.float32)
    codes = [_plain_census(view, 7, 7) for view in (left, right)]
    expected = scores.copy()
    for y in range(8):
        for x in range(11):
            for d in range(min(5, x + 1)):  # left x at d > x: out of view, left alone
                hamming = bin(int(codes[0][y, x]) ^ int(codes[1][y, x - d])).count("1")
                expected[y, x, d] = 0.7 * scores[y, x, d] + 0.3 * (1 - 2 * hamming / 48)
    out = matching.blend_census(scores.copy(), left, right, 0.3)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(matching.blend_census(scores.copy(), left, right, 0), scores)


@pytest.mark.parametrize("sigma_px", [0.5, 0.7, 1.3])
def test_gaussian_blur_is_the_plain_definition(sigma_px):
    """Each output pixel: the sum over the 2-D window of Gaussian weights
    (normalised per axis) times the edge-repeated image."""
    image = np.random.default_rng(8).uniform(0, 255, (9, 12)).astype(np.float32)
    radius = int(4 * sigma_px + 0.5)
    offsets = np.arange(-radius, radius + 1)
    taps = np.exp(-0.5 * (offsets / sigma_px) ** 2)
    taps /= taps.sum()
    expected = np.zeros(image.shape)
    for y in range(9):
        for x in range(12):
            rows = np.clip(y + offsets, 0, 8)
            columns = np.clip(x + offsets, 0, 11)
            expected[y, x] = taps @ image[np.ix_(rows, columns)] @ taps
    blurred = matching.gaussian_blur(image, sigma_px)
    assert blurred.dtype == np.float32
    np.testing.assert_allclose(blurred, expected, rtol=1e-5)
    unblurred = matching.gaussian_blur(image, 0)
    np.testing.assert_array_equal(unblurred, image)
    assert not np.shares_memory(unblurred, image)


def test_blend_census_blurs_the_views_by_sigma():
    rng = np.random.default_rng(9)
    left, right = rng.uniform(0, 255, (2, 10, 14)).astype(np.float32)
    scores = rng.uniform(-1, 1, (10, 14, 4)).astype(np.float32)
    blurred = [matching.gaussian_blur(view, 0.7) for view in (left, right)]
    expected = matching.blend_census(scores.copy(), *blurred, 0.4)
    out = matching.blend_census(scores.copy(), left, right, 0.4, sigma_px=0.7)
    np.testing.assert_array_equal(out, expected)
    assert not np.array_equal(out, matching.blend_census(scores.copy(), left, right, 0.4))


def test_a_blurred_census_agrees_more_between_noisy_views():
    # One smooth scene, each camera with its own noise: the census codes of
    # the true match differ in fewer bits once the views are slightly blurred.
    rng = np.random.default_rng(10)
    y, x = np.mgrid[0:64, 0:64]
    scene = 128 + 60 * np.sin(x / 5.0) * np.cos(y / 7.0)
    views = [(scene + rng.normal(0, 4, scene.shape)).astype(np.float32) for _ in range(2)]

    def differing_bits(sigma_px):
        codes = [matching.census_transform(matching.gaussian_blur(v, sigma_px)) for v in views]
        return np.mean([bin(int(a) ^ int(b)).count("1") for a, b in zip(*map(np.ravel, codes))])

    assert differing_bits(0.7) < 0.8 * differing_bits(0.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: matching.census_transform(np.zeros((4, 4)), (4, 3)),
            "`window` must be odd sides of at most 65 pixels, received (4, 3)",
        ),
        (
            lambda: matching.census_transform(np.zeros((4, 4)), (9, 9)),
            "`window` must be odd sides of at most 65 pixels, received (9, 9)",
        ),
        (
            lambda: matching.blend_census(
                np.zeros((4, 4, 2)), np.zeros((4, 4)), np.zeros((4, 4)), 2
            ),
            "`weight` must be in [0, 1], received 2",
        ),
        (
            lambda: matching.blend_census(
                np.zeros((4, 4, 2)), np.zeros((4, 4)), np.zeros((4, 4)), 0.5, sigma_px=-1
            ),
            "`sigma_px` must be a finite number >= 0, received -1",
        ),
        (
            lambda: matching.gaussian_blur(np.zeros((4, 4)), float("nan")),
            "`sigma_px` must be a finite number >= 0, received nan",
        ),
        (
            lambda: matching.gaussian_blur(np.zeros((4, 4)), None),
            "`sigma_px` must be a finite number >= 0, received None",
        ),
        (
            lambda: matching.gaussian_blur(np.zeros((4, 4)), True),
            "`sigma_px` must be a finite number >= 0, received True",
        ),
        (
            lambda: matching.blend_census(
                np.zeros((4, 4, 2)), np.zeros((4, 4, 3)), np.zeros((4, 4)), 0.5
            ),
            "`left_grey` must be a grey (h, w) image, received shape (4, 4, 3)",
        ),
        (
            lambda: matching.blend_census(
                np.zeros((4, 4, 2)), np.zeros((4, 4)), np.zeros((4, 5)), 0.5
            ),
            "`right_grey` must have left_grey's shape and the volume's (h, w) (4, 4), "
            "received (4, 4) and (4, 5)",
        ),
        (
            lambda: matching.gaussian_blur(np.zeros((4, 4, 3)), 0.7),
            "`image` must be a grey (h, w) image, received shape (4, 4, 3)",
        ),
    ],
)
def test_census_arguments_are_validated(call, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        call()


def test_the_matcher_blurs_the_census_by_its_sigma(monkeypatch):
    pair = synthetic_pair(height=64, width=96, seed=4, max_disparity=12)
    volume, views = _volume(pair.left, pair.right, 12)
    sigmas, blend = [], matching.blend_census

    def recording(*args, **kwargs):
        sigmas.append(kwargs["sigma_px"])
        return blend(*args, **kwargs)

    monkeypatch.setattr(matching, "blend_census", recording)
    maps = [
        _matcher(weights=None, census_sigma_px=sigma).match(volume, *views)[0]
        for sigma in (0.0, 0.7)
    ]
    assert sigmas == [0.0, 0.7]
    assert not np.array_equal(*maps)


def test_the_census_keeps_a_pair_whose_cameras_differ():
    # Strong gamma and gain differences between the views: the random
    # network's correlation alone loses the match where the census keeps it.
    pair = synthetic_pair(seed=3)
    right = (40 + 0.6 * 255 * (pair.right / 255.0) ** 2.2).astype(np.float32)
    rates = {}
    for weight in (0.0, 0.5):
        matcher = _matcher(weights=None, max_disparity=32, census_weight=weight)
        rates[weight] = bad_pixel_rate(
            matcher.compute(pair.left, right).disparity, pair.disparity, 2
        )
    assert rates[0.5] < 0.5 * rates[0.0], rates


def test_the_left_band_follows_its_neighbours_not_the_padding():
    # Middlebury scores the band whose match lies left of the right image;
    # scored as padding (a poor match), it would take a wrong in-view disparity.
    pair = synthetic_pair(height=120, width=160, seed=5, max_disparity=24, truth_out_of_view=True)
    x = np.arange(160)[None, :]
    band = np.isfinite(pair.disparity) & (x - pair.disparity < 0)
    assert band.sum() > 200
    volume, views = _volume(pair.left, pair.right, 24)

    def band_bad2(out_of_view, edge_px):
        # Neither speckles nor the right view's own aggregation, which also
        # rejects the band's wrong winners: the scores and the fill alone.
        # Nor the cost's truncation, which also makes the padding's score
        # no worse than any other poor match.
        d, _ = _matcher(
            out_of_view_quantile=out_of_view, speckle_size=0, right_sgm_paths=None, fill=False,
            max_cost=2.0,
        ).match(volume, *views)  # fmt: skip
        d = matching.median3(matching.fill_occlusions(d, edge_px=edge_px, behind_both_px=None))
        return (np.abs(np.nan_to_num(d, nan=1e9) - pair.disparity)[band] > 2).mean()

    # The few wrong winners the padding leaves sit at the band's edge, and
    # the fill spreads them over it: a quantile of the in-view scores cuts
    # the band's errors...
    assert band_bad2(0.5, edge_px=0) < 0.6 * band_bad2(None, edge_px=0)
    # ...and so does the matcher's fill, which does not start from the pixel
    # next to a hole: why `out_of_view_quantile` defaults to None.
    assert band_bad2(None, edge_px=1) < 0.6 * band_bad2(None, edge_px=0)


@pytest.mark.parametrize(
    "out_of_view, width, depth", [(None, 12, 5), (0.5, 12, 5), (0.5, 4, 6), (0.8, 12, 5)]
)
def test_right_view_cost_reads_the_left_cost_from_the_right(out_of_view, width, depth):
    cost = np.random.default_rng(0).uniform(0, 2, (3, width, depth)).astype(np.float32)
    right = matching.right_view_cost(cost.copy(), out_of_view)
    for xr in range(width):
        in_view = min(depth, width - xr)  # right pixel xr at d is left pixel xr + d
        for d in range(in_view):
            np.testing.assert_array_equal(right[:, xr, d], cost[:, xr + d, d])
        expected = (
            2.0
            if out_of_view is None
            else np.quantile(right[:, xr, :in_view], 1 - out_of_view, axis=-1, keepdims=True)
        )
        np.testing.assert_allclose(
            right[:, xr, in_view:], np.broadcast_to(expected, right[:, xr, in_view:].shape)
        )


def test_the_right_views_own_aggregation_catches_what_the_left_smoothed_over():
    # Read from the left's aggregated cost, the right view agrees with the
    # left's smoothing of a near surface over the background it hides.
    pair = synthetic_pair(height=120, width=160, seed=5, max_disparity=24, truth_out_of_view=True)
    volume, views = _volume(pair.left, pair.right, 24)

    def wrong_among_kept(right_paths):
        # Before the fill: the share of the pixels the check keeps that are
        # more than 2 px off. On the untruncated cost: truncated, the left's
        # aggregation smooths far less over what it cannot match, and on
        # this pair the check reads the same either way.
        d, _ = _matcher(right_sgm_paths=right_paths, fill=False, max_cost=2.0).match(volume, *views)
        kept = np.isfinite(d)
        return (np.abs(d - pair.disparity)[kept] > 2).mean()

    for paths in (4, 8):
        assert wrong_among_kept(paths) < 0.9 * wrong_among_kept(None), paths


def test_a_near_object_at_the_left_edge_survives_the_demos_wide_range():
    # The shipped pair's ellipse (disparity ~53, x 54-84 in view) next to the
    # left band, matched over the demo's default range (a quarter of the
    # width, 128): scored as the best in-view match, the many out-of-view
    # disparities beside the true one would take it over.
    from PIL import Image

    data = os.path.join(DATA, "..", "..", "demos", "data")
    left, right = (
        np.asarray(Image.open(os.path.join(data, f"{side}.png")).convert("RGB"))
        for side in ("left", "right")
    )
    truth = np.asarray(Image.open(os.path.join(data, "disparity_gt.png")), np.float32) / 256
    disparity, _ = _match(left, right, left.shape[1] // 4)
    ellipse = truth > 45
    ellipse[:, 100:] = False
    assert ellipse.sum() > 2000
    assert (np.abs(disparity - truth)[ellipse] <= 2).mean() > 0.9


@pytest.mark.parametrize("max_size, step", [(20, 1.0), (60, 2.0)])
def test_speckles_are_what_opencv_removes(max_size, step):
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(max_size)
    # Blocks of constant disparity (regions of every size), holes, and noise.
    blocks = rng.integers(0, 40, (12, 16)).repeat(rng.integers(1, 9, 12), axis=0)
    disparity = blocks.repeat(rng.integers(1, 9, 16), axis=1)[:60, :80].astype(np.float32)
    disparity = disparity + rng.integers(0, 2, disparity.shape)
    disparity[rng.random(disparity.shape) < 0.05] = np.nan
    as_opencv = np.where(np.isfinite(disparity), disparity * 16, -16).astype(np.int16)
    cv2.filterSpeckles(as_opencv, -16, max_size, int(step * 16))
    kept = matching.remove_speckles(disparity, max_size, step)
    np.testing.assert_array_equal(np.isfinite(kept), as_opencv >= 0)
    np.testing.assert_array_equal(kept[np.isfinite(kept)], disparity[as_opencv >= 0])


def test_a_winding_region_counts_all_its_pixels():
    # A snake: 21 rows of 51 joined at alternate ends (1091 px), its two ends
    # 1090 steps apart along it, but one region.
    disparity = np.full((41, 51), np.nan, np.float32)
    disparity[::2] = 7.0
    disparity[1::4, -1] = disparity[3::4, 0] = 7.0
    assert np.isfinite(matching.remove_speckles(disparity, 1090, 1.0)).sum() == 1091
    assert not np.isfinite(matching.remove_speckles(disparity, 1091, 1.0)).any()
    disparity[0, 0] = 9.0  # more than a step away: a speckle of its own
    kept = matching.remove_speckles(disparity, 1, 1.0)
    assert np.isnan(kept[0, 0]) and np.isfinite(kept).sum() == 1090
    assert matching.remove_speckles(disparity, 0, 1.0) is disparity


@pytest.mark.parametrize("holes", [False, True])
def test_median3_is_the_median_of_the_finite_neighbours(holes):
    disparity = np.random.default_rng(3).uniform(0, 30, (20, 31)).astype(np.float32)
    if holes:  # NaN neighbours are ignored, NaN pixels stay NaN
        disparity[np.random.default_rng(4).random(disparity.shape) < 0.3] = np.nan
    padded = np.pad(disparity, 1, mode="edge")
    expected = np.full_like(disparity, np.nan)
    for y, x in zip(*np.nonzero(np.isfinite(disparity))):
        expected[y, x] = np.nanmedian(padded[y : y + 3, x : x + 3])
    np.testing.assert_array_equal(matching.median3(disparity), expected)


def test_disparity_helpers():
    volume = np.full((2, 12, 5), -1.0, np.float32)
    for x in range(12):
        d = min(3, x)
        volume[:, x, d] = 1.0
    # No aggregation to speak of (penalties 0), no speckle filter (14 px
    # would be one), no fill: the winners and the left-right check alone.
    views = [np.zeros((2, 12, 3), np.float32)] * 2
    disparity, valid = _matcher(
        p1=0, p2=0, edge=None, speckle_size=0, right_sgm_paths=None, fill=False
    ).match(volume, *views)
    assert np.allclose(disparity[:, 5:], 3) and valid[:, 5:].all()
    assert not valid[:, :2].any()  # matches on the right view's border are rejected
    filled = matching.fill_occlusions(
        np.array([[np.nan, 5, np.nan, 2, np.nan]], np.float32), edge_px=0, behind_both_px=None
    )
    np.testing.assert_array_equal(filled, [[5, 5, 2, 2, 2]])
    up = upsample_disparity(np.full((4, 6), 2.0, np.float32), 11, 15, 2, 3)
    assert up.shape == (11, 15) and np.allclose(up, 4.0)
    spike = np.full((5, 5), 3.0, np.float32)
    spike[2, 2] = 40
    assert matching.median3(spike)[2, 2] == 3


def test_max_cost_lets_the_neighbours_decide_a_pixel_with_no_good_match():
    """A pixel whose every match is poor (cosine -1 everywhere but 0.2 at
    disparity 1) among neighbours that all match at 3: without truncation
    its own least-poor match outweighs the jump penalty; with costs
    truncated at 0.7 its costs are all equal and the neighbours' paths
    decide. Truncating is the same as clipping the correlation."""
    volume = np.full((3, 12, 6), -1.0, np.float32)
    volume[:, :, 3] = 1.0
    volume[1, 6] = -1.0
    volume[1, 6, 1] = 0.2
    views = [np.zeros((3, 12, 3), np.float32)] * 2
    settings = dict(p1=0.3, p2=0.6, edge=None, speckle_size=0, right_sgm_paths=None,
                    lr_tolerance_px=100, border_margin_px=0, fill=False,
                    census_weight=0)  # fmt: skip
    plain, _ = _matcher(max_cost=2.0, **settings).match(volume, *views)
    truncated, _ = _matcher(max_cost=0.7, **settings).match(volume, *views)
    assert round(float(plain[1, 6])) == 1 and round(float(truncated[1, 6])) == 3
    clipped, _ = _matcher(max_cost=2.0, **settings).match(np.maximum(volume, 0.3), *views)
    np.testing.assert_array_equal(truncated, clipped)


def test_fill_occlusions_at_the_left_edge():
    """A hole with a valid pixel to its left takes the farther of its row
    neighbours; one touching the left edge takes the nearest valid pixel
    right, above or below, so a background hidden behind a near object at
    the edge comes from the background around the object, and the band the
    right camera never sees (a column of holes) from its row (these rules
    alone: `edge_px=0`, no weighted median)."""
    fill = functools.partial(
        matching.fill_occlusions, edge_px=0, behind_both_px=None, median_radius_px=0
    )
    background = np.full((9, 12), 6.0, np.float32)
    background[3:6, 4:] = 20  # a near object reaching the right edge
    background[3:6, :4] = np.nan  # the background it hides from the right camera
    filled = fill(background)
    np.testing.assert_array_equal(filled[3:6, :2], 6)  # the row alone would give 20
    assert filled[4, 3] == 20  # right next to the object, the object is nearer
    ground = np.tile(np.arange(10, 19, dtype=np.float32)[:, None], (1, 12))
    ground[:, :3] = np.nan  # the left band
    np.testing.assert_array_equal(fill(ground)[:, :3], ground[:, 3:6])
    empty_row = np.full((3, 4), 2.0, np.float32)
    empty_row[1] = np.nan
    np.testing.assert_array_equal(fill(empty_row), 2.0)
    assert np.isnan(fill(np.full((2, 3), np.nan, np.float32))).all()


@pytest.mark.parametrize("edge_px", [1, 2])
def test_fill_occlusions_refills_the_pixels_next_to_a_hole(edge_px):
    """The `edge_px` valid pixels on each side of a hole on its row are
    filled with it, from the pixels beyond them: a background pixel next to
    an occlusion, 1.5 px off, does not set the whole hole's value."""
    row = np.array([[4, 4, 4, 4, 5.5, np.nan, np.nan, 9.5, 9, 9, 9, 9]], np.float32)
    filled = matching.fill_occlusions(row, edge_px=edge_px)
    expected = row.copy()
    expected[0, 5 - edge_px : 7 + edge_px] = 4  # the farther side, beyond the edge pixels
    np.testing.assert_array_equal(filled, expected)
    untouched = np.array([[3, 3, 3, 3]], np.float32)  # no hole: nothing changes
    np.testing.assert_array_equal(matching.fill_occlusions(untouched, edge_px=edge_px), untouched)


def test_a_hole_behind_both_its_row_neighbours_takes_its_column():
    """A hole whose left neighbour is nearer than its right one belongs to
    neither: it takes the farther of the nearest valid pixels above and
    below (the background between two objects), not the right object."""
    scene = np.full((9, 12), 5.0, np.float32)  # the background
    scene[2:7, :4] = 30  # a near object
    scene[2:7, 7:] = 20  # a nearer-than-background one, hiding...
    scene[2:7, 4:7] = np.nan  # ...the background between them
    scene[8, 4:7] = 6  # below the hole the background is a bit nearer
    filled = matching.fill_occlusions(scene, edge_px=0, behind_both_px=1.0)
    np.testing.assert_array_equal(filled[2:7, 4:7], 5)
    old_rule = matching.fill_occlusions(scene, edge_px=0, behind_both_px=None)
    np.testing.assert_array_equal(old_rule[2:7, 4:7], 20)
    scene[2:7, :4] = 20.5  # within the tolerance of the right one: the row decides
    np.testing.assert_array_equal(
        matching.fill_occlusions(scene, edge_px=0, behind_both_px=1.0)[2:7, 4:7], 20
    )


def test_a_hole_at_the_left_edge_takes_the_source_of_its_colour():
    """An object reaching into the left band (its part x < d unmatched)
    keeps its own disparity there, the background beside it the
    background's: with the left view's colours, the nearest source in
    colour and distance; without, in distance alone (the object's value
    spreads as a wedge into the background)."""
    height, width = 40, 30
    truth = np.full((height, width), 5.0, np.float32)
    truth[10:30, 4:] = 25  # an object from x = 4, its part x < 25 out of view
    image = np.where((truth == 25)[..., None], [200, 60, 60], [40, 40, 160]).astype(np.float32)
    disparity = truth.copy()
    disparity[10:30, :12] = np.nan  # the band and the background hidden beside it
    with_colour = matching.fill_occlusions(disparity, edge_px=0, image=image)
    np.testing.assert_array_equal(with_colour, truth)
    by_distance = matching.fill_occlusions(disparity, edge_px=0)
    assert (by_distance[10:30, :4] == 25).any()  # the background took the object's
    np.testing.assert_array_equal(  # None: the image unused
        matching.fill_occlusions(disparity, edge_px=0, image=image, color_per_px=None),
        matching.fill_occlusions(disparity, edge_px=0, color_per_px=0.0),
    )
    grey = image.mean(axis=-1)  # the two colours differ in grey too
    np.testing.assert_array_equal(matching.fill_occlusions(disparity, edge_px=0, image=grey), truth)
    with pytest.raises(ValueError, match="`image` must be the left view, 40x30 pixels"):
        matching.fill_occlusions(disparity, image=image[:, :20])


def _plain_weighted_median(disparity, targets, image, radius, color_sigma, distance_sigma):
    """`fill_occlusions`' weighted median as written in its docstring."""
    height, width = disparity.shape
    out = disparity.copy()
    for y, x in zip(*np.nonzero(targets)):
        ys, xs = np.mgrid[
            max(y - radius, 0) : min(y + radius + 1, height),
            max(x - radius, 0) : min(x + radius + 1, width),
        ]
        ys, xs = ys.ravel(), xs.ravel()
        keep = np.isfinite(disparity[ys, xs])
        ys, xs = ys[keep], xs[keep]
        color = np.abs(image[ys, xs] - image[y, x]).sum(axis=-1)
        distance = np.hypot(ys - y, xs - x)
        weights = np.exp(-distance / distance_sigma).astype(np.float32) * np.exp(
            -color / color_sigma
        ).astype(np.float32)
        values = disparity[ys, xs]
        order = np.argsort(values, kind="stable")
        running = np.cumsum(weights[order])
        out[y, x] = values[order][np.searchsorted(running, weights.sum() / 2)]
    return out


def test_the_weighted_median_is_the_plain_definition():
    rng = np.random.default_rng(3)
    disparity = rng.uniform(0, 30, (23, 31)).astype(np.float32)
    disparity[rng.random(disparity.shape) < 0.1] = np.nan  # not sources
    image = rng.integers(0, 256, (23, 31, 3)).astype(np.float32)
    targets = rng.random(disparity.shape) < 0.3
    ties = np.round(disparity / 4) * 4  # a filled map's runs of equal values
    # 8-bit levels (the kernel's table) and any others (its exp).
    for values, colours in [(disparity, image), (ties, image), (disparity, image * 1.37)]:
        for radius, color_sigma, distance_sigma in [(1, 10.0, 5.0), (4, 30.0, 2.0), (7, 1e3, 1e3)]:
            settings = (radius, color_sigma, distance_sigma)
            np.testing.assert_array_equal(
                _kernels.weighted_median(values, targets, colours, *settings),
                _plain_weighted_median(values, targets, colours, *settings),
            )


def test_the_weighted_median_gives_a_hidden_surface_its_colour():
    """A leaf between the background and a nearer object: where its whole
    width failed the checks, the row's fill gives it the background (the
    farther end); the colour-weighted median gives it the leaf's own
    disparity, seen in its colour above and below."""
    truth = np.full((40, 40), 10.0, np.float32)  # the background
    truth[10:30, 10:20] = 20  # the leaf
    truth[10:30, 20:] = 40  # the nearer object
    colours = {10.0: [40, 40, 160], 20.0: [60, 160, 60], 40.0: [200, 60, 60]}
    image = np.array([[colours[float(d)] for d in row] for row in truth], np.float32)
    disparity = truth.copy()
    disparity[19:21, 10:20] = np.nan
    fill = functools.partial(matching.fill_occlusions, disparity, image, edge_px=0)
    assert (fill(median_radius_px=0)[19:21, 10:20] == 10).all()
    np.testing.assert_array_equal(fill(median_radius_px=5), truth)
    np.testing.assert_array_equal(fill(), truth)  # the shipped window
    # Without the image, nearness alone: the background's nearer fill wins.
    no_colour = matching.fill_occlusions(disparity, edge_px=0, median_radius_px=5)
    assert (no_colour[19:21, 10:20] == 10).any()


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"median_radius_px": -1}, "`median_radius_px` must be an integer >= 0, received -1"),
        ({"median_radius_px": 2.5}, "`median_radius_px` must be an integer >= 0, received 2.5"),
        ({"median_color_sigma": 0}, "`median_color_sigma` must be a finite number > 0, received 0"),
        (
            {"median_distance_sigma_px": float("inf")},
            "`median_distance_sigma_px` must be a finite number > 0, received inf",
        ),
    ],
)
def test_the_weighted_median_settings_are_validated(settings, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        matching.fill_occlusions(np.zeros((4, 4), np.float32), **settings)


def _plain_color_mismatch(disparity, left, right):
    """`color_mismatch` as its docstring says, pixel by pixel."""
    height, width = disparity.shape
    matched = list(zip(*np.nonzero(np.isfinite(disparity))))
    seen = {
        (y, x): right[y, min(max(x - int(np.rint(disparity[y, x])), 0), width - 1)]
        for y, x in matched
    }
    out = np.full((height, width), np.nan, np.float32)
    fits = [
        np.polyfit([seen[p][c] for p in matched], [left[p][c] for p in matched], 1)
        for c in range(left.shape[-1])
    ]
    for y, x in matched:
        out[y, x] = sum(
            abs(left[y, x, c] - (gain * seen[y, x][c] + offset))
            for c, (gain, offset) in enumerate(fits)
        )
    return out


def test_color_mismatch_is_the_plain_definition_and_ignores_gain_and_offset():
    rng = np.random.default_rng(5)
    right = rng.integers(0, 256, (12, 40, 3)).astype(np.float32)
    disparity = np.full((12, 40), 4.0, np.float32)
    disparity[:, 30:] = 6.4  # rounds to 6
    disparity[rng.random(disparity.shape) < 0.1] = np.nan
    columns = np.clip(np.arange(40) - np.rint(np.nan_to_num(disparity)).astype(int), 0, 39)
    seen = right[np.arange(12)[:, None], columns]
    # The left camera: brighter and offset, per channel; a few wrong matches.
    left = seen * np.array([1.5, 0.8, 1.1], np.float32) + np.array([10, -5, 0], np.float32)
    wrong = (slice(3, 5), slice(10, 14))
    left[wrong] = 255 - left[wrong]
    mismatch = matching.color_mismatch(disparity, left, right)
    np.testing.assert_allclose(
        mismatch, _plain_color_mismatch(disparity, left, right), rtol=1e-4, atol=1e-2
    )
    assert np.isnan(mismatch[np.isnan(disparity)]).all()
    matched = np.isfinite(disparity)
    matched[wrong] = False
    # The gain and offset fitted are nearly the cameras' (a few wrong pixels
    # pull the fit): a good match differs by a few levels, a wrong one by many.
    assert np.nanmax(mismatch[matched]) < 30
    assert np.nanmin(mismatch[wrong]) > 60


def test_the_colour_check_corrects_a_match_spread_over_the_background():
    """A near object spread 2 px over the background beside it, with both
    views agreeing (the left-right check passes it): those pixels point to
    a right pixel of another colour, so they take the median of the matches
    of their own colour around them, the background's."""
    height, width, edge = 30, 100, 70
    palette = np.array([[40, 40, 160], [40, 160, 40], [160, 40, 40], [120, 120, 40]], np.float32)
    rng = np.random.default_rng(0)
    index = rng.integers(0, 4, (height, width))  # the background by right-view column
    for column in range(10, width):  # 10 px apart, two background points look unlike
        clash = index[:, column] == index[:, column - 10]
        index[clash, column] = (index[clash, column - 10] + rng.integers(1, 4, clash.sum())) % 4
    background = palette[index]
    near = rng.integers(200, 240, (height, width - edge, 3)).astype(np.float32)
    truth = np.full((height, width), 5.0, np.float32)
    truth[:, edge:] = 15
    right = background.copy()
    right[:, edge - 15 : width - 15] = near
    left = np.concatenate([background[:, :5], background[:, : edge - 5], near], axis=1)
    spread = truth.copy()
    spread[:, edge - 2 : edge] = 15
    np.testing.assert_array_equal(matching.recheck_colors(spread, left, right, levels=40), truth)
    # No check, or a map without matches: nothing changes.
    np.testing.assert_array_equal(matching.recheck_colors(spread, left, right, math.inf), spread)
    holes = np.full_like(spread, np.nan)
    assert np.isnan(matching.recheck_colors(holes, left, right, 40)).all()


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda d, v: matching.recheck_colors(d, v, v, -2),
            "`levels` must be a number >= 0 (math.inf: none), received -2",
        ),
        (
            lambda d, v: matching.recheck_colors(d, v, v, 10, median_radius_px=-1),
            "`median_radius_px` must be an integer >= 0, received -1",
        ),
        (
            lambda d, v: matching.color_mismatch(d, v, v[:, :3]),
            "`right` must be the right view, 4x6 pixels like the disparity, "
            "received shape (4, 3, 3)",
        ),
    ],
)
def test_colour_check_arguments_are_validated(call, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        call(np.zeros((4, 6), np.float32), np.zeros((4, 6, 3), np.float32))


def test_the_matcher_takes_its_networks_colour_check():
    assert StereoMatcher.__init__.__kwdefaults__["color_check_levels"] is None
    for quality in ("fast", "accurate"):
        assert _matcher_levels(quality) == COLOR_CHECK_LEVELS[quality]
    assert _matcher_levels("accurate", color_check_levels=12.0) == 12.0


def _matcher_levels(quality, **settings):
    return StereoMatcher(
        weights=None, quality=quality, runtime="keras", **settings
    ).color_check_levels


@pytest.mark.parametrize(
    "quality, name", [("fast", "stereo_reference"), ("accurate", "stereo_reference_accurate")]
)
def test_the_same_map_under_every_backend(quality, name):
    """tests/data/stereo_reference*.npz were made under TensorFlow with the
    shipped weights of each quality; JAX and torch must give the same map
    (to 1 px)."""
    reference = np.load(os.path.join(DATA, f"{name}.npz"))
    disparity, _ = _match(
        reference["left"], reference["right"], int(reference["max_disparity"]), quality=quality
    )
    close = np.abs(disparity - reference["disparity"]) <= 1
    assert close.mean() > 0.99, close.mean()


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_correlate_features_is_the_correlation_volume(dtype):
    """The matcher's compiled correlation against the Keras layer, on
    features whose mean and length vary from pixel to pixel (what the
    normalisation removes), one of them flat."""
    import ml_dtypes

    rng = np.random.default_rng(5)
    shape = (2, 6, 40, 16)
    features = rng.normal(size=shape) * rng.uniform(0.5, 3, shape[:3] + (1,))
    features += rng.uniform(-4, 4, shape[:3] + (1,))
    features[0, 2, 9] = 1.5
    features = features.astype(ml_dtypes.bfloat16 if dtype == "bfloat16" else np.float32)
    as_float = features.astype(np.float32)
    expected = CorrelationVolume(7)([as_float[:1], as_float[1:]])
    volume = matching.correlate_features(features[0], features[1], 7)
    assert volume.dtype == np.float32
    np.testing.assert_allclose(volume, keras.ops.convert_to_numpy(expected)[0], atol=1e-5)
    assert volume[2, 9, 0] == 0 and (volume[:, :3, 3:] == -1).all()


@pytest.mark.parametrize(
    "shapes, max_disparity, message",
    [
        (
            ((4, 9, 3), (4, 8, 3)),
            2,
            "`right` must have left's shape (4, 9, 3), received shape (4, 8, 3)",
        ),
        (((4, 9), (4, 9)), 2, "`left` must be (h, w, c) features, received shape (4, 9)"),
        (((4, 9, 3), (4, 9, 3)), -1, "`max_disparity` must be an integer >= 0, received -1"),
        (((4, 9, 3), (4, 9, 3)), 2.5, "`max_disparity` must be an integer >= 0, received 2.5"),
        (((4, 9, 3), (4, 9, 3)), True, "`max_disparity` must be an integer >= 0, received True"),
    ],
)
def test_correlate_features_refuses(shapes, max_disparity, message):
    left, right = (np.zeros(shape, np.float32) for shape in shapes)
    with pytest.raises(ParameterError, match=re.escape(message)):
        matching.correlate_features(left, right, max_disparity)


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "onnx", "torch"])
@pytest.mark.parametrize("height", [40, 127, 500, 1080])
def test_strips_are_even_and_about_the_backends_height(backend, height):
    rows = stem_lib.strip_rows(height, backend)
    about = stem_lib.TORCH_STRIP_ROWS if backend == "torch" else stem_lib.STRIP_ROWS
    strips = math.ceil(height / rows)
    assert rows % 2 == 0 and strips == math.ceil(height / about)
    # The last strip is no shorter than the others by a strip's worth.
    assert height - (strips - 1) * rows > rows - 2 * strips


def test_strips_give_the_whole_image_volume():
    pair = synthetic_pair(height=70, width=90, seed=3, max_disparity=10)
    model = build_matching_model(10, stem=stem_lib.load_stem("stereo")[0])
    left, right = pair.left.astype("float32"), pair.right.astype("float32")
    whole = keras.ops.convert_to_numpy(model([left[None], right[None]]))[0]
    strips = stem_lib.correlate_in_strips(stem_lib.keras_volume_of(model), left, right, rows=16)
    np.testing.assert_allclose(strips, whole, atol=1e-4)


def test_training_scenes_have_exact_ground_truth():
    from kerazoo.app.demos.stereo_scenes import training_pair, training_set

    rng = np.random.default_rng(0)
    left, right, disparity = training_pair(rng, 48, 96, 20, camera_differences=False)
    known = np.isfinite(disparity)
    assert left.shape == right.shape == (48, 96, 3) and 0.5 < known.mean() < 1
    assert np.nanmin(disparity) >= -2 and np.nanmax(disparity) <= 20
    # Where the truth is known, the right view shows the same surface there
    # (up to noise and the linear resampling of the texture).
    ys, xs = np.nonzero(known & (disparity > 1))
    xr = np.round(xs - disparity[ys, xs]).astype(int)
    diff = np.abs(left[ys, xs].astype(float) - right[ys, xr].astype(float)).mean()
    shuffled = np.abs(left[ys, xs].astype(float) - right[ys, np.roll(xr, 7)].astype(float)).mean()
    assert diff < 0.5 * shuffled
    lefts, rights, gts = training_set(3, 32, 64, 16, seed=1)
    assert lefts.shape == (3, 32, 64, 3) and gts.shape == (3, 32, 64, 1) and (gts < 0).any()


@pytest.mark.parametrize("share, mixed_textures", [(0.0, True), (1.0, False)])
def test_photo_share_decides_which_scenes_are_photos_only(monkeypatch, share, mixed_textures):
    """`photo_share=1` textures every surface with a photo crop (the mix of
    noise, stripes and flat colours is never drawn); 0 keeps the stream
    earlier trainings saw, draw for draw."""
    from kerazoo.app.demos import stereo_scenes

    plain = stereo_scenes.training_set(4, 32, 64, 16, seed=[0, 5])
    drawn = []
    mix = stereo_scenes.texture
    monkeypatch.setattr(stereo_scenes, "texture", lambda *a, **k: drawn.append(1) or mix(*a, **k))
    shared = stereo_scenes.training_set(4, 32, 64, 16, seed=[0, 5], photo_share=share)
    assert bool(drawn) == mixed_textures
    for a, b in zip(plain, shared):
        assert np.array_equal(a, b) == mixed_textures


@pytest.mark.parametrize(
    "kind, needs",
    [
        ("warped_photo_pair", "skimage"),
        ("see_through_pair", "skimage"),
        ("tuning_photo_pair", "sklearn"),
    ],
)
def test_photo_sets_have_truth_everywhere(kind, needs):
    """R', L and the tuning set P: the truth at every pixel, the same pair
    for the same index, and the right view shows the left's surface where
    the truth says (up to the cameras' differences and the occluded pixels,
    which also count)."""
    pytest.importorskip(needs)
    from kerazoo.app.demos import stereo_scenes

    make = getattr(stereo_scenes, kind)
    left, right, truth = make(1)
    np.testing.assert_array_equal(make(1)[0], left)
    assert left.shape == right.shape == stereo_scenes.EVALUATION_SIZE + (3,)
    assert np.isfinite(truth).all() and 0 <= truth.min() and truth.max() < 45
    h, w = truth.shape
    ys, xs = np.mgrid[0:h, 0:w]
    xr = np.round(xs - truth).astype(int)
    inside = xr >= 0
    lv, rv = left.astype(float), right.astype(float)
    rv = (rv - rv.mean()) / rv.std() * lv.std() + lv.mean()  # one gain and offset undone

    def mismatch(shift):
        return np.abs(lv[inside] - rv[ys[inside], np.clip(xr[inside] + shift, 0, w - 1)]).mean()

    assert mismatch(0) < 0.7 * mismatch(7)


@pytest.mark.parametrize("atrous", [True, False])
def test_folded_batch_norm_gives_the_same_features(atrous):
    """The inference stem: no BatchNormalization layers, the same features;
    in mixed_bfloat16, bfloat16 arithmetic and features close to them."""
    stem = set_batch_norm_statistics(
        xception_stem(atrous=atrous), [b for _, b in STEM_CONVOLUTIONS]
    )
    image = np.random.default_rng(1).uniform(-1, 1, (2, 40, 56, 3)).astype("float32")
    want = keras.ops.convert_to_numpy(stem(image))
    folded = fold_batch_norm(stem)
    assert not [
        layer for layer in folded.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    # Each BatchNormalization's 4 vectors become one bias.
    assert folded.count_params() == stem.count_params() - 3 * sum(
        stem.get_layer(bn).gamma.shape[0] for _, bn in STEM_CONVOLUTIONS
    )
    scale = np.abs(want).max()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(folded(image)), want, atol=1e-5 * scale)
    mixed = fold_batch_norm(stem, "mixed_bfloat16")
    assert mixed.get_layer("block2_sepconv2").compute_dtype == "bfloat16"
    got = keras.ops.convert_to_numpy(keras.ops.cast(mixed(image), "float32"))
    assert np.abs(got - want).mean() < 0.02 * np.abs(want).mean()


def test_cpu_has_bfloat16_reads_the_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("flags\t\t: fpu avx512f avx512_bf16 avx512_vnni\n")
    assert stem_lib.cpu_has_bfloat16(info)
    info.write_text("flags\t\t: fpu avx512f avx512_vnni\nmodel name\t: avx512_bf16less\n")
    assert not stem_lib.cpu_has_bfloat16(info)
    assert not stem_lib.cpu_has_bfloat16(tmp_path / "missing")


@pytest.mark.parametrize("has_bfloat16", [False, True])
def test_auto_precision_is_bfloat16_only_where_it_was_faster(has_bfloat16, monkeypatch):
    monkeypatch.setattr(stem_lib, "cpu_has_bfloat16", lambda: has_bfloat16)
    fast = has_bfloat16 and keras.backend.backend() in ("tensorflow", "torch")
    assert stem_lib.feature_policy() == ("mixed_bfloat16" if fast else "float32")
    assert stem_lib.feature_policy("float32") == "float32"
    assert stem_lib.feature_policy("mixed_bfloat16") == "mixed_bfloat16"
    with pytest.raises(
        ParameterError,
        match="`precision` must be one of auto, float32, mixed_bfloat16, received 'half'",
    ):
        stem_lib.feature_policy("half")


def test_a_slow_first_run_says_the_kernels_are_compiling(monkeypatch):
    """`warm_up` calls `notify` when loading the kernels takes long (they are
    compiling), and stays quiet when it does not."""
    import time

    from kerazoo.stereo import COMPILING, _kernels

    heard = []
    _kernels.warm_up(heard.append, after_s=5.0)  # compiled already: quick
    assert heard == []
    real = _kernels.add_row_paths

    def compiling(*args):
        time.sleep(0.5)
        return real(*args)

    monkeypatch.setattr(_kernels, "add_row_paths", compiling)
    _kernels.warm_up(heard.append, after_s=0.05)
    assert heard == [COMPILING]


def test_the_sub_pixel_step_is_the_parabolas_vertex():
    """Values, not a tolerance of 1 px: the vertex of the parabola through
    the winner and its neighbours, towards the cheaper neighbour."""
    cost = np.array(
        [
            [
                [4.0, 1.0, 2.0, 9.0],
                [9.0, 2.0, 1.0, 4.0],
                [0.0, 1.0, 2.0, 3.0],
                [3.0, 2.0, 1.5, 0.5],
                [5.0, 1.0, 1.0, 5.0],
            ]
        ],
        np.float32,
    )
    best, refined = matching.winners(cost)
    np.testing.assert_array_equal(best, [[1, 2, 0, 3, 1]])
    # 1 + (4 - 2) / (2 (4 - 2 + 2)) = 1.25; mirrored, 1.75; none at the ends;
    # a tie takes the first, and its parabola's vertex halfway.
    np.testing.assert_allclose(refined, [[1.25, 1.75, 0.0, 3.0, 1.5]], rtol=0, atol=1e-6)
