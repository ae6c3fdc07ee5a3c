"""`StereoMatcher`: a rectified stereo pair in, a disparity map out.

One object holds every setting, as OpenCV's `StereoSGBM` does; its defaults
are the values chosen on generated tuning pairs
(`benchmarks/stereo_tuning.py`, `benchmarks/results/stereo_tuning.json`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import time
import warnings

import numpy as np

from kerazoo.errors import InputError, ParameterError, WeightsError
from kerazoo.stereo import _kernels, matching
from kerazoo.stereo import stem as stem_lib
from kerazoo.stereo._checks import is_finite, is_int, is_number
from kerazoo.stereo.onnx_features import OnnxFeatures, onnxruntime_available

# A pair keeping fewer left-right consistent pixels than this is matched
# again with its views exchanged, to tell a swapped pair from a hard one.
SWAP_CHECK_BELOW = 0.5
# SGM's (P1, P2) and where the cost is truncated (`max_cost`), for each
# network's cost, chosen on tuning sets only: the lowest mean bad-2 over
# generated scenes as taken (T), by two cameras (T') and the training photos
# warped onto them (P) (benchmarks/results/stereo_weights.json, "max_cost").
# Truncated, a pixel whose every match is poor (occluded, or out of the
# right camera's view) weighs nothing in the aggregation, and its
# neighbours' paths decide.
SGM_PENALTIES = {"fast": (0.45, 7.2), "accurate": (0.6, 9.6)}
MAX_COSTS = {"fast": 0.6, "accurate": 0.7}
# The census similarity's share of each network's correlation
# (`matching.blend_census`), chosen on the same tuning sets and real pair A
# ("census" in stereo_weights.json).
CENSUS_WEIGHTS = {"fast": 0.4, "accurate": 0.5}
# The colour check's levels (`matching.recheck_colors`) for each network,
# chosen on the same tuning sets and A ("color_check" in
# stereo_weights.json; math.inf: none). Its median costs about 0.12 s on
# 0.4 MP: within the fast network's 1.5 s since the correlation is compiled.
COLOR_CHECK_LEVELS = {"fast": 22.0, "accurate": 30.0}
# What runs the network: "onnx" (ONNX Runtime, no Keras import: a fast
# start) or "keras" (the reference: any weights, precision and backend).
RUNTIMES = ("auto", "keras", "onnx")


@dataclasses.dataclass
class StereoResult:
    """What `StereoMatcher.compute` returns.

    Attributes:
        disparity: float32 (h, w), in pixels of the left image as given: left
            pixel (y, x) shows the scene point of right pixel (y, x - d). NaN
            where there is no estimate (only with `fill=False`, or a row or
            column without any).
        valid: bool (h, w): left-right consistent and not a speckle, before
            any filling.
        seconds: the seconds each stage took.
        scale: the factor the pair was matched at (1.0, or below 1 for a pair
            over `max_pixels`).
        views_look_swapped: True when the views exchanged match far better:
            LEFT and RIGHT were very likely given the wrong way round.
    """

    disparity: np.ndarray
    valid: np.ndarray
    seconds: dict
    scale: float = 1.0
    views_look_swapped: bool = False

    @property
    def valid_fraction(self) -> float:
        return float(self.valid.mean())


def _check(name, value, ok, requirement):
    if not ok:
        raise ParameterError(name, f"must be {requirement}, received {value!r}")


def _optional(ok):
    return lambda value: value is None or ok(value)


_SMALLEST_PIXELS = stem_lib.MIN_SIDE**2
# Each setting of StereoMatcher: (accepts the value, what it must be).
_SETTINGS = {
    "max_disparity": (_optional(lambda v: is_int(v, 4)), "None or an integer of at least 4"),
    "max_pixels": (
        _optional(lambda v: is_number(v) and v >= _SMALLEST_PIXELS),
        f"None or at least {_SMALLEST_PIXELS}",
    ),
    "sgm_paths": (lambda v: v in (4, 8), "4 or 8"),
    "right_sgm_paths": (lambda v: v in (None, 4, 8), "None, 4 or 8"),
    "p1": (_optional(is_finite), "None or a finite number >= 0"),
    "p2": (_optional(is_finite), "None or a finite number >= 0"),
    "max_cost": (
        _optional(lambda v: is_finite(v) and v > 0),
        "None or a finite number > 0",
    ),
    "census_weight": (
        _optional(lambda v: is_number(v) and 0 <= v <= 1),
        "None or a number in [0, 1]",
    ),
    "census_sigma_px": (is_finite, "a finite number >= 0"),
    "color_check_levels": (
        _optional(lambda v: is_number(v) and v >= 0),
        "None or a number >= 0, math.inf for no check",
    ),
    "lr_tolerance_px": (is_finite, "a finite number >= 0"),
    "speckle_step_px": (is_finite, "a finite number >= 0"),
    "edge": (_optional(lambda v: is_number(v) and v > 0), "None or a number > 0"),
    "fill_color_per_px": (_optional(is_finite), "None or a finite number >= 0"),
    "fill_behind_both_px": (_optional(is_finite), "None or a finite number >= 0"),
    "border_margin_px": (is_int, "an integer >= 0"),
    "speckle_size": (is_int, "an integer >= 0"),
    "fill_edge_px": (is_int, "an integer >= 0"),
    "fill_median_radius_px": (is_int, "an integer >= 0"),
    "fill_median_color_sigma": (lambda v: is_finite(v) and v > 0, "a finite number > 0"),
    "fill_median_distance_sigma_px": (lambda v: is_finite(v) and v > 0, "a finite number > 0"),
    "out_of_view_quantile": (
        _optional(lambda v: is_number(v) and 0 <= v <= 1),
        "None or a number in [0, 1]",
    ),
    "runtime": (lambda v: v in RUNTIMES, f"one of {', '.join(map(repr, RUNTIMES))}"),
    "quality": (
        lambda v: v in stem_lib.QUALITIES,
        f"one of {', '.join(map(repr, stem_lib.QUALITIES))}",
    ),
    "progress": (_optional(callable), "None or a callable (stage, seconds)"),
}


def _is_stem(weights):
    """Whether `weights` is a Keras model (only ever one when Keras is loaded)."""
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(weights, keras.Model)


def _validate(settings):
    for name, (ok, requirement) in _SETTINGS.items():
        _check(name, settings[name], ok(settings[name]), requirement)


class StereoMatcher:
    """Disparity maps of rectified stereo pairs, from learned features.

    ONE network shared by both cameras (Xception's first layers, run atrous:
    a feature at every pixel, stereo-trained weights that ship with kerazoo;
    two sizes, `quality`)
    computes the features; their cosine correlation at every disparity,
    blended with a census match of the grey images, is aggregated
    semi-globally (SGM, guided by the image's edges), the winner
    is refined to sub-pixel, checked against the right view's own
    aggregation, speckles are removed, and the holes (mostly occlusions) are
    filled from the background, each then taking the colour-weighted median
    of the map around it, and a 3x3 median.

    The pair must be rectified (a scene point on the same row in both views),
    and LEFT is the camera whose view shows a scene point further right.

    Args:
        weights: `"stereo"` (the shipped stereo-trained weights of `quality`), `"imagenet"`
            (ImageNet Xception's first layers: found or downloaded), `None`
            (random, seeded), a path (`.weights.h5` of the stem, or a
            keras-applications Xception `.h5`), or a stem itself: a
            `keras.Model` from `kerazoo.stereo.stem.xception_stem` (e.g.
            one you trained), of the `quality` given.
        quality: which network: `"fast"` (the default) or `"accurate"`: the
            same network and a residual block of two more layers: each
            feature sees 23 px instead of 15, for about 1.8x the
            feature time (`kerazoo.stereo.stem.xception_stem`; measured in
            docs/stereo.md).
        max_disparity: the largest disparity searched, in pixels of the
            images given (at least 4); None: a quarter of their width (at
            least 16).
        precision: the features' dtype policy: `"auto"` (`mixed_bfloat16`
            under TensorFlow and torch on a CPU with bfloat16 instructions,
            else `float32`), `"float32"` or `"mixed_bfloat16"`.
        fill: fill the pixels that fail the checks (else NaN).
        max_pixels: larger pairs are matched downscaled to this many pixels
            and the map brought back to their size; None: never.
        sgm_paths: 4 or 8 aggregation directions.
        p1, p2: SGM's penalties for a 1 px change and a larger jump, on the
            cost `1 - cosine` (in [0, 2]); None: those chosen for the
            `quality`'s network (`SGM_PENALTIES`).
        max_cost: where the matching cost `1 - cosine` is truncated before
            the aggregation: any worse match counts as this bad, so pixels
            whose every match is poor weigh nothing (2: no truncation);
            None: the value chosen for the `quality`'s network (`MAX_COSTS`).
        census_weight: the census similarity's share of the correlation
            (`kerazoo.stereo.matching.blend_census`: robust to the two
            cameras' differences in exposure and response; 0: the network's
            alone); None: the value chosen for the `quality`'s network
            (`CENSUS_WEIGHTS`).
        census_sigma_px: the Gaussian blur of the grey views before their
            census, in pixels, so that sensor noise and JPEG flip fewer of
            its comparisons. 0 (none) for both networks: 0.7 px helps the
            tuning photos warped with camera differences (P) but costs the
            generated pairs (T, T'), Aloe, the held-out photos (R') and
            Motorcycle ("census_variants" in
            benchmarks/results/stereo_weights.json).
        edge: grey levels of gradient that halve the jump penalty (None:
            unguided).
        right_sgm_paths: the right view's own aggregation for the left-right
            check, 4 or 8 paths; None reads it from the left view's cost.
        lr_tolerance_px: the largest left-right disagreement kept.
        color_check_levels: the colour check
            (`kerazoo.stereo.matching.recheck_colors`): a match whose pixel
            differs from the right view's pixel it matched by more than this
            (0-255 levels summed over channels, after fitting each channel's
            gain and offset between the views) takes the colour-weighted
            median of the matches around it; `math.inf`: none; None: the
            value chosen for the `quality`'s network (`COLOR_CHECK_LEVELS`).
        border_margin_px: matches this close to the right view's left edge
            are rejected.
        speckle_size, speckle_step_px: regions of at most `speckle_size`
            pixels, joined by steps of at most `speckle_step_px`, are removed
            (0: none).
        out_of_view_quantile: disparities whose match lies left of the right
            image score the pixel's quantile of its in-view scores; None:
            they score the padding's correlation, 0.
        fill_edge_px, fill_behind_both_px, fill_color_per_px: the fill's
            settings (`kerazoo.stereo.matching.fill_occlusions`;
            `fill_color_per_px=None`: by distance alone, the image unused).
        fill_median_radius_px, fill_median_color_sigma: the window and the
            colour scale of the fill's weighted median over the filled
            pixels (`fill_occlusions`' `median_*`; radius 0: none).
        fill_median_distance_sigma_px: that median's distance scale.
        check_swapped: match a pair that keeps under half its pixels again
            with its views exchanged, and warn if that is far better.
        runtime: what runs the network: `"keras"` (any weights and
            precision, on Keras's backend), `"onnx"` (the shipped stereo
            weights in float32 by ONNX Runtime, without importing Keras: the
            same map, seconds sooner in a fresh process) or `"auto"` (ONNX
            where it can run the weights and precision asked for and ONNX
            Runtime is installed, else Keras).
        progress: `progress(stage, seconds)` hears when a stage starts
            (`seconds` None) and ends; also `(COMPILING, None)` while the
            kernels compile on a first run.

    Attributes:
        runtime: `"keras"` or `"onnx"`, the one that runs.
        stem: the shared network as trained (a `keras.Model`, float32;
            loaded on first use under the ONNX runtime).
        features: the Keras network the Keras runtime runs: BatchNormalization
            folded into the convolutions, in `policy`.
        policy: the features' dtype policy.
        weights_label: which weights the stem holds.

    Example:

    >>> import numpy as np
    >>> from kerazoo.stereo import StereoMatcher
    >>> rng = np.random.default_rng(0)
    >>> right = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    >>> left = np.roll(right, 5, axis=1)  # every scene point 5 px further right
    >>> result = StereoMatcher(max_disparity=16).compute(left, right)
    >>> round(float(np.median(result.disparity[:, 20:])), 1)
    5.0

    Reference:
        Hirschmüller, "Stereo Processing by Semiglobal Matching and Mutual
        Information", PAMI 2008; Zbontar & LeCun, "Stereo Matching by
        Training a Convolutional Neural Network to Compare Image Patches",
        JMLR 2016.
    """

    def __init__(
        self,
        weights="stereo",
        max_disparity=None,
        *,
        precision="auto",
        fill=True,
        max_pixels=1_000_000,
        sgm_paths=8,
        p1=None,
        p2=None,
        max_cost=None,
        census_weight=None,
        census_sigma_px=0.0,
        edge=4.0,
        right_sgm_paths=4,
        lr_tolerance_px=1.0,
        color_check_levels=None,
        border_margin_px=2,
        speckle_size=200,
        speckle_step_px=2.0,
        out_of_view_quantile=None,
        fill_edge_px=matching.FILL_EDGE_PX,
        fill_behind_both_px=matching.FILL_BEHIND_BOTH_PX,
        fill_color_per_px=matching.FILL_COLOR_PER_PX,
        fill_median_radius_px=matching.FILL_MEDIAN_RADIUS_PX,
        fill_median_color_sigma=matching.FILL_MEDIAN_COLOR_SIGMA,
        fill_median_distance_sigma_px=matching.FILL_MEDIAN_DISTANCE_SIGMA_PX,
        check_swapped=True,
        runtime="auto",
        quality="fast",
        progress=None,
    ):
        _validate(locals())
        self.max_disparity = None if max_disparity is None else int(max_disparity)
        self.fill, self.max_pixels, self.check_swapped = bool(fill), max_pixels, check_swapped
        tuned = SGM_PENALTIES[quality]
        self.p1 = tuned[0] if p1 is None else p1
        self.p2 = tuned[1] if p2 is None else p2
        self.max_cost = MAX_COSTS[quality] if max_cost is None else max_cost
        self.census_weight = CENSUS_WEIGHTS[quality] if census_weight is None else census_weight
        self.census_sigma_px = census_sigma_px
        self.sgm_paths, self.edge = sgm_paths, edge
        self.right_sgm_paths, self.lr_tolerance_px = right_sgm_paths, lr_tolerance_px
        self.color_check_levels = (
            COLOR_CHECK_LEVELS[quality] if color_check_levels is None else color_check_levels
        )
        self.border_margin_px = int(border_margin_px)
        self.speckle_size, self.speckle_step_px = int(speckle_size), speckle_step_px
        self.out_of_view_quantile = out_of_view_quantile
        self.fill_edge_px, self.fill_behind_both_px = int(fill_edge_px), fill_behind_both_px
        self.fill_color_per_px = fill_color_per_px
        self.fill_median_radius_px = int(fill_median_radius_px)
        self.fill_median_color_sigma = fill_median_color_sigma
        self.fill_median_distance_sigma_px = fill_median_distance_sigma_px
        self.progress = progress or (lambda stage, seconds: None)
        given_stem = _is_stem(weights)
        if not (weights is None or isinstance(weights, str) or hasattr(weights, "__fspath__")):
            if not given_stem:
                raise ParameterError(
                    "weights",
                    f"must be 'stereo', 'imagenet', None, a path or a stem, received {weights!r}",
                )
            names = {layer.name for layer in weights.layers}
            if "atrous_split" not in names or stem_lib.STEM_FEATURES not in names:
                raise ParameterError(
                    "weights",
                    "must be a stem from xception_stem(atrous=True) with its "
                    f"BatchNormalization, received the model {weights.name!r}",
                )
            if stem_lib.stem_quality(weights) != quality:
                raise ParameterError(
                    "quality",
                    f"must be the stem's, {stem_lib.stem_quality(weights)!r}, received {quality!r}",
                )
        stem_lib.check_precision(precision)
        self.quality = quality
        self._weights, self._onnx = weights, None
        # What one feature sees decides how far strips of rows overlap.
        dilations = stem_lib.refine_dilations_of(weights) if given_stem else None
        self._halo_rows = stem_lib.halo_rows(quality, dilations)
        if choose_runtime(runtime, weights, precision, quality) == "onnx":
            self._onnx = OnnxFeatures(quality=quality)
        self.runtime = "keras" if self._onnx is None else "onnx"
        if self._onnx is None:
            self.policy = stem_lib.feature_policy(precision)
            if given_stem:
                self._stem, self.weights_label = weights, weights.name
            else:
                self._stem, self.weights_label = stem_lib.load_stem(weights, quality)
            # For inference: BatchNormalization folded into the convolutions.
            self._features = stem_lib.fold_batch_norm(self._stem, self.policy)
        else:
            self.policy = "float32"
            self.weights_label = stem_lib.stereo_label(quality)
            self._stem = self._features = None
        self._kernels_ready = False

    @property
    def stem(self):
        if self._stem is None:
            self._stem = stem_lib.load_stem(self._weights, self.quality)[0]
        return self._stem

    @property
    def features(self):
        if self._features is None:
            self._features = stem_lib.fold_batch_norm(self.stem, self.policy)
        return self._features

    # ---------------------------------------------------------------- steps

    @contextlib.contextmanager
    def _stage(self, seconds, name):
        self.progress(name, None)
        start = time.perf_counter()
        yield
        seconds[name] = round(time.perf_counter() - start, 3)
        self.progress(name, seconds[name])

    def max_disparity_for(self, width):
        """The disparity range searched on images `width` pixels wide."""
        return self.max_disparity if self.max_disparity is not None else max(16, width // 4)

    def correlate(self, left, right, max_disparity=None):
        """The cosine correlation `(h, w, max_disparity + 1)` of two prepared
        views (`prepare_pair`), computed in row strips: the volume of
        `stem.build_matching_model(max_disparity, stem=self.features)`, with
        the network run by the runtime and the correlation by a compiled
        loop that reads the features once."""
        max_disparity = max_disparity or self.max_disparity_for(left.shape[1])
        self._warm_up_kernels()

        def volume_of(left_rows, right_rows):
            features = self._features_of_views(np.stack([left_rows, right_rows]))
            return matching.correlate_features(features[0], features[1], max_disparity)

        if self._onnx is None:
            import keras

            backend = keras.backend.backend()
        else:
            backend = "onnx"
        rows = stem_lib.strip_rows(left.shape[0], backend)
        return stem_lib.correlate_in_strips(
            volume_of, left, right, rows=rows, halo_rows=self._halo_rows
        )

    def features_of(self, image):
        """The network's `(h, w, 128)` features of one prepared view, float32."""
        return np.asarray(self._features_of_views(image[None])[0], np.float32)

    def _features_of_views(self, images):
        """Features of a batch of prepared views, in the runtime's dtype
        (bfloat16 under a mixed_bfloat16 policy)."""
        if self._onnx is not None:
            return self._onnx(images)
        # Rescaling's arithmetic (xception_preprocessing), as the model has it.
        scaled = images * np.float32(1 / 127.5) - np.float32(1.0)
        return np.asarray(self.features.predict_on_batch(scaled))

    def _warm_up_kernels(self):
        if not self._kernels_ready:
            _kernels.warm_up(lambda message: self.progress(message, None))
            self._kernels_ready = True

    def match(self, scores, left, right, overwrite=False):
        """`(disparity, valid)` from a correlation volume of the prepared
        views `left` and `right`, in the volume's pixels. `overwrite` lets
        the volume's memory hold the costs (one volume less at the peak)."""
        disparity, valid = self._checked_disparity(scores, left, right, overwrite)
        if not math.isinf(self.color_check_levels):
            disparity = matching.recheck_colors(disparity, left, right, self.color_check_levels)
        if self.fill:
            disparity = matching.median3(
                matching.fill_occlusions(
                    disparity,
                    image=left,
                    edge_px=self.fill_edge_px,
                    behind_both_px=self.fill_behind_both_px,
                    color_per_px=self.fill_color_per_px,
                    median_radius_px=self.fill_median_radius_px,
                    median_color_sigma=self.fill_median_color_sigma,
                    median_distance_sigma_px=self.fill_median_distance_sigma_px,
                )
            )
        return disparity, valid

    def _checked_disparity(self, scores, left, right, overwrite):
        """The matching before the fill: the disparity, NaN where it failed
        the left-right check or was a speckle, and where it did not."""
        self._warm_up_kernels()
        volume = scores.astype(np.float32, copy=not overwrite)
        # Grey views: the census's and the aggregations' edge guides.
        left_grey, right_grey = left.mean(axis=-1), right.mean(axis=-1)
        matching.blend_census(
            volume, left_grey, right_grey, self.census_weight, sigma_px=self.census_sigma_px
        )
        matching.neutralize_out_of_view(volume, self.out_of_view_quantile)
        cost = np.subtract(1.0, volume, out=volume)
        if self.max_cost is not None:
            np.minimum(cost, np.float32(self.max_cost), out=cost)
        guided = self.edge is not None
        guide = left_grey if guided else None
        aggregated = matching.sgm(cost, self.p1, self.p2, guide, self.edge or 1.0, self.sgm_paths)
        d, disparity = matching.winners(aggregated)
        if self.right_sgm_paths:
            # The right view's own aggregation: the left's smoothing spreads
            # a near surface over the background it hides, and the right
            # view read from that cost agrees with it. The left's aggregated
            # memory is done with: the right's reuses it.
            right_cost = matching.right_view_cost(cost, self.out_of_view_quantile)
            back_d = matching.sgm(
                right_cost,
                self.p1,
                self.p2,
                right_grey if guided else None,
                self.edge or 1.0,
                self.right_sgm_paths,
                out=aggregated,
            ).argmin(axis=-1)
        else:
            back_d = matching.right_view_winners(aggregated)
        h, w = d.shape
        xr = np.arange(w)[None, :] - d
        back = back_d[np.arange(h)[:, None], np.clip(xr, 0, w - 1)]
        valid = (xr >= self.border_margin_px) & (np.abs(d - back) <= self.lr_tolerance_px)
        disparity = np.where(valid, disparity, np.nan).astype(np.float32)
        disparity = matching.remove_speckles(disparity, self.speckle_size, self.speckle_step_px)
        return disparity, np.isfinite(disparity)

    # --------------------------------------------------------------- compute

    def compute(self, left, right):
        """The disparity map of a rectified pair.

        Args:
            left, right: numpy arrays of one size, `(h, w, 3)` RGB,
                `(h, w, 4)` RGBA (alpha ignored) or `(h, w)` grey; uint8,
                uint16 (any bit depth: both views share one scale) or float
                (0..1, or 0..255). At least 16 pixels a side.

        Returns:
            A `StereoResult`. A pair that very likely has its views swapped
            also raises a `UserWarning`; the result is still this pair's.
        """
        seconds = {}
        left, right = prepare_pair(left, right)
        height, width = left.shape[:2]
        max_disparity = self.max_disparity_for(width)
        if max_disparity >= width:
            raise ParameterError(
                "max_disparity", f"{max_disparity} is not smaller than the image width ({width})"
            )
        scale = 1.0
        if self.max_pixels is not None and height * width > self.max_pixels:
            from kerazoo._io import resize_image

            with self._stage(seconds, "downscale"):
                scale = math.sqrt(self.max_pixels / (height * width))
                small = (
                    max(stem_lib.MIN_SIDE, int(height * scale)),
                    max(stem_lib.MIN_SIDE, int(width * scale)),
                )
                left, right = (resize_image(view, *small) for view in (left, right))
                max_disparity = max(4, math.ceil(max_disparity * scale))
        with self._stage(seconds, "features + correlation"):
            scores = self.correlate(left, right, max_disparity)
        with self._stage(seconds, "matching"):
            disparity, valid = self.match(scores, left, right, overwrite=True)
            del scores
        swapped = False
        if self.check_swapped and valid.mean() < SWAP_CHECK_BELOW:
            with self._stage(seconds, "swap check"):
                swapped = self._looks_swapped(left, right, max_disparity, valid.mean())
            if swapped:
                warnings.warn(
                    "the views look swapped: exchanged, they match far better "
                    "(LEFT is the camera whose view shows a scene point further "
                    "right)",
                    UserWarning,
                    stacklevel=2,
                )
        if scale < 1.0:
            with self._stage(seconds, "upscale"):
                disparity = upsample_disparity(disparity, height, width, 1 / scale, 0.0)
                rows = np.minimum((np.arange(height) * scale).astype(int), valid.shape[0] - 1)
                columns = np.minimum((np.arange(width) * scale).astype(int), valid.shape[1] - 1)
                valid = valid[rows][:, columns]
        return StereoResult(disparity, valid, seconds, scale, swapped)

    def _looks_swapped(self, left, right, max_disparity, valid_fraction):
        # Exchanged, a swapped pair is a proper one again.
        scores = self.correlate(right, left, max_disparity)
        _, valid = self._checked_disparity(scores, right, left, overwrite=True)
        return bool(valid.mean() > max(2 * valid_fraction, SWAP_CHECK_BELOW))


def prepare_pair(left, right):
    """Two views as float32 (h, w, 3) RGB in 0-255, on one shared scale.

    uint8 stays as it is; wider integers are scaled by the full scale of the
    pair's peak (a 12-bit pair in uint16 reads as 12-bit); floats in 0..1 are
    multiplied by 255, floats up to 255 kept, larger ones scaled like integers.
    Grey views are repeated over RGB, alpha is dropped.
    """
    from kerazoo._io import _shared_full_scale

    views = []
    for name, view in (("left", left), ("right", right)):
        view = np.asarray(view)
        if view.dtype == bool or not (
            np.issubdtype(view.dtype, np.integer) or np.issubdtype(view.dtype, np.floating)
        ):
            raise InputError(
                f"`{name}` must be an image of integers or floats, received dtype {view.dtype}"
            )
        if view.ndim == 3 and view.shape[-1] == 1:
            view = view[..., 0]
        if view.ndim == 2:
            view = np.repeat(view[..., None], 3, axis=-1)
        if view.ndim != 3 or view.shape[-1] not in (3, 4):
            raise InputError(
                f"`{name}` must be (h, w, 3) RGB, (h, w, 4) RGBA or (h, w) grey, "
                f"received shape {np.shape(view)}"
            )
        view = view[..., :3]
        if np.issubdtype(view.dtype, np.floating) and not np.isfinite(view).all():
            raise InputError(f"`{name}` holds NaN or infinite values")
        if view.min(initial=0) < 0:
            raise InputError(f"`{name}` holds negative values: give intensities")
        views.append(view)
    if views[0].shape != views[1].shape:
        (lh, lw), (rh, rw) = views[0].shape[:2], views[1].shape[:2]
        raise InputError(
            f"left and right views differ in size: {lw}x{lh} vs {rw}x{rh} "
            "(a rectified pair has one size)"
        )
    height, width = views[0].shape[:2]
    if min(height, width) < stem_lib.MIN_SIDE:
        raise InputError(
            f"images of {width}x{height} are too small (each side must be at "
            f"least {stem_lib.MIN_SIDE} pixels)"
        )
    if all(v.dtype == np.uint8 for v in views):
        return tuple(np.ascontiguousarray(v, np.float32) for v in views)
    factor = 255.0 / _shared_full_scale(views)
    return tuple(
        np.ascontiguousarray(np.clip(v.astype(np.float32) * factor, 0, 255)) for v in views
    )


def choose_runtime(runtime, weights="stereo", precision="auto", quality="fast"):
    """`"onnx"` or `"keras"`: what `StereoMatcher(weights, runtime=...,
    precision=..., quality=...)` runs its network with (see its `runtime`).
    With `"auto"`, a shipped ONNX graph that is missing or fails its sha256
    check is passed over for Keras, with a warning."""
    from kerazoo import weights as weights_lib
    from kerazoo.stereo.onnx_features import FEATURES_ONNX_OF

    if runtime not in RUNTIMES:
        raise ParameterError("runtime", f"must be {_SETTINGS['runtime'][1]}, received {runtime!r}")
    onnx_can_run = (
        isinstance(weights, str) and weights == "stereo" and precision in ("auto", "float32")
    )
    if runtime == "onnx" and not onnx_can_run:
        raise ParameterError(
            "runtime",
            "'onnx' runs the shipped stereo weights in float32 only, received "
            f"weights={weights!r}, precision={precision!r} (use runtime='keras')",
        )
    if runtime != "auto":
        return runtime
    if not (onnx_can_run and onnxruntime_available()):
        return "keras"
    try:
        weights_lib.resolve(FEATURES_ONNX_OF[quality], download=False)
    except WeightsError as e:
        warnings.warn(f"{e}: running the network with Keras", UserWarning, stacklevel=3)
        return "keras"
    return "onnx"


def upsample_disparity(disparity, height, width, stride, offset=0.0):
    """A disparity map on a coarser grid, bilinear to (height, width) pixels,
    in those pixels (values times `stride`). Coarse pixel (i, j) is centred
    on fine pixel (stride * i + offset, stride * j + offset); NaN stays NaN."""
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

    def interpolate(a):
        top = a[y0][:, x0] * (1 - fx) + a[y0][:, x1] * fx
        bottom = a[y1][:, x0] * (1 - fx) + a[y1][:, x1] * fx
        return top * (1 - fy)[:, None] + bottom * fy[:, None]

    num, den = interpolate(values), interpolate(weights)
    out = np.where(den > 0.5, num / np.maximum(den, 1e-6), np.nan)
    return (out * stride).astype(np.float32)
