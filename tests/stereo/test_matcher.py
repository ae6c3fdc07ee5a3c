"""`kerazoo.stereo.StereoMatcher` as a library: arrays in, a map out, the
same map as the command; inputs as people give them; settings validated;
depth and point clouds."""

import functools
import inspect
import json
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from kerazoo.errors import InputError, ParameterError
from kerazoo.stereo import (
    Calibration,
    StereoMatcher,
    depth_from_disparity,
    matching,
    point_cloud,
    prepare_pair,
    read_middlebury_calibration,
    write_ply,
)
from kerazoo.stereo.stem import build_matching_model, correlate_in_strips, keras_volume_of

from conftest import assert_one_line_error, run_cli

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "demos", "data")
MAX_DISPARITY = 32  # the shipped pair's truth stays below 60; 32 keeps the tests quick


@functools.cache
def _shipped():
    left, right = (
        np.asarray(Image.open(os.path.join(DATA, f"{side}.png")).convert("RGB"))
        for side in ("left", "right")
    )
    return left[:192, :256], right[:192, :256]  # a corner: quicker, the same code


@functools.cache
def _matcher(**settings):
    return StereoMatcher(max_disparity=MAX_DISPARITY, **settings)


@functools.cache
def _reference():
    return _matcher().compute(*_shipped())


def test_compute_returns_the_map_the_command_writes(tmp_path):
    left, right = (
        np.asarray(Image.open(os.path.join(DATA, f"{side}.png")).convert("RGB"))
        for side in ("left", "right")
    )
    result = StereoMatcher().compute(left, right)
    command = run_cli(
        "demo",
        "stereo",
        os.path.join(DATA, "left.png"),
        os.path.join(DATA, "right.png"),
        "--out",
        tmp_path / "o",
        "--json",
    )
    assert command.exit_code == 0, command.output
    np.testing.assert_array_equal(np.load(tmp_path / "o" / "disparity.npy"), result.disparity)
    summary = json.loads(command.stdout)
    assert summary["disparity"]["valid_fraction"] == round(result.valid_fraction, 4)
    assert result.disparity.dtype == np.float32 and result.disparity.shape == left.shape[:2]
    assert result.valid.dtype == bool and not result.views_look_swapped
    assert set(result.seconds) == {"features + correlation", "matching"}
    # Quality, against the shipped truth: a bar a broken matcher fails.
    truth = np.asarray(Image.open(os.path.join(DATA, "disparity_gt.png")), np.float32) / 256
    known = truth > 0
    assert (np.abs(result.disparity - truth)[known] <= 1).mean() > 0.9


def _as(kind, image):
    """The same image in another dtype or layout a user might hold."""
    grey = image.mean(axis=-1).round().astype(np.uint8)
    return {
        "uint8 rgb": image,
        "uint8 rgba": np.concatenate([image, np.full(image.shape[:2] + (1,), 7, np.uint8)], -1),
        "uint16 rgb": image.astype(np.uint16) * 257,
        "float 0..1": image / np.float32(255),
        "float 0..255": image.astype(np.float64),
        "uint8 grey": grey,
        "uint8 grey (h, w, 1)": grey[..., None],
        "uint16 grey": grey.astype(np.uint16) * 257,
    }[kind]


@pytest.mark.parametrize("kind", ["uint8 rgba", "uint16 rgb", "float 0..1", "float 0..255"])
def test_every_color_dtype_gives_the_uint8_map(kind):
    left, right = _shipped()
    result = _matcher().compute(_as(kind, left), _as(kind, right))
    np.testing.assert_allclose(result.disparity, _reference().disparity, atol=1e-3)


@pytest.mark.parametrize("kind", ["uint8 grey (h, w, 1)", "uint16 grey"])
def test_grey_views_in_any_layout_give_the_grey_map(kind):
    left, right = _shipped()
    grey = _matcher().compute(_as("uint8 grey", left), _as("uint8 grey", right))
    result = _matcher().compute(_as(kind, left), _as(kind, right))
    np.testing.assert_allclose(result.disparity, grey.disparity, atol=1e-3)
    # Grey loses a little, not the map: most pixels within 1 px of colour's.
    assert (np.abs(grey.disparity - _reference().disparity) <= 1).mean() > 0.9


def test_deep_views_share_one_scale():
    # A 12-bit pair in uint16 whose views peak differently: one factor for
    # both (the full scale of 12 bits), not each view stretched to its peak.
    rng = np.random.default_rng(0)
    left = rng.integers(0, 4000, (80, 90, 3)).astype(np.uint16)
    right = (left * 0.6).astype(np.uint16)
    prepared_left, prepared_right = prepare_pair(left, right)
    np.testing.assert_allclose(prepared_left, left * (255 / 4095), rtol=1e-6)
    np.testing.assert_allclose(prepared_right, right * (255 / 4095), rtol=1e-6)
    assert prepared_left.dtype == np.float32 and prepared_left.shape == (80, 90, 3)


@pytest.mark.parametrize(
    "left, right, message",
    [
        (np.zeros((80, 90, 3), bool), None, "`left` must be an image of integers or floats"),
        (np.zeros((80, 90, 2), np.uint8), None, "`left` must be (h, w, 3) RGB, (h, w, 4) RGBA"),
        (np.zeros((80, 90, 3)), np.zeros((80, 91, 3)), "differ in size: 90x80 vs 91x80"),
        (np.zeros((10, 90, 3), np.uint8), np.zeros((10, 90, 3), np.uint8), "too small"),
        (np.full((80, 90, 3), np.nan), None, "`left` holds NaN or infinite values"),
        (np.full((80, 90, 3), -1.0), None, "`left` holds negative values"),
    ],
)
def test_bad_arrays_are_one_clear_error(left, right, message):
    right = left if right is None else right
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prepare_pair(left, right)


def test_swapped_views_warn_and_keep_the_result():
    left, right = _shipped()
    with pytest.warns(UserWarning, match="the views look swapped"):
        swapped = _matcher().compute(right, left)
    assert swapped.views_look_swapped and swapped.valid_fraction < 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the proper order: no warning
        assert not _matcher().compute(left, right).views_look_swapped
    # A hard pair the exchange does not help is not called swapped.
    noise = np.random.default_rng(1).integers(0, 256, (2, 96, 128, 3), np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert not _matcher().compute(noise[0], noise[1]).views_look_swapped


# bfloat16 keeps 8 bits: where a backend rounds the features (XLA may fuse
# the input scaling into the first convolution) moves a cosine by up to ~4e-3.
@pytest.mark.parametrize("precision, atol", [("float32", 1e-5), ("mixed_bfloat16", 5e-3)])
def test_the_keras_runtimes_volume_is_the_matching_models(precision, atol):
    """The matcher runs the network, then its own compiled correlation: the
    volume of the Keras matching model (the network shared by both views,
    then `CorrelationVolume`) on the same strips."""
    left, right = prepare_pair(*_shipped())
    matcher = StereoMatcher(runtime="keras", precision=precision, max_disparity=MAX_DISPARITY)
    model = build_matching_model(MAX_DISPARITY, stem=matcher.features)
    expected = correlate_in_strips(keras_volume_of(model), left, right)
    volume = matcher.correlate(left, right)
    assert volume.dtype == np.float32 and volume.shape == expected.shape
    np.testing.assert_allclose(volume, expected, atol=atol)


def test_pairs_over_max_pixels_are_matched_downscaled_and_returned_at_their_size():
    left, right = _shipped()
    result = _matcher(max_pixels=10_000).compute(left, right)
    assert result.scale == pytest.approx((10_000 / (192 * 256)) ** 0.5)
    assert result.disparity.shape == result.valid.shape == (192, 256)
    # In the input's pixels: close to the full-size map where both have one.
    close = np.abs(result.disparity - _reference().disparity) <= 3
    assert close.mean() > 0.7


@pytest.mark.parametrize(
    "settings, message",
    [
        (
            {"max_disparity": 3},
            "`max_disparity` must be None or an integer of at least 4, received 3",
        ),
        ({"max_disparity": 16.5}, "`max_disparity` must be None or an integer"),
        ({"max_pixels": 100}, "`max_pixels` must be None or at least 256, received 100"),
        ({"sgm_paths": 6}, "`sgm_paths` must be 4 or 8, received 6"),
        ({"right_sgm_paths": 2}, "`right_sgm_paths` must be None, 4 or 8, received 2"),
        ({"p1": -1}, "`p1` must be None or a finite number >= 0, received -1"),
        ({"p2": float("nan")}, "`p2` must be None or a finite number >= 0"),
        ({"max_cost": 0}, "`max_cost` must be None or a finite number > 0, received 0"),
        ({"edge": 0}, "`edge` must be None or a number > 0, received 0"),
        (
            {"census_weight": 1.5},
            "`census_weight` must be None or a number in [0, 1], received 1.5",
        ),
        (
            {"census_sigma_px": -0.5},
            "`census_sigma_px` must be a finite number >= 0, received -0.5",
        ),
        ({"speckle_size": 2.5}, "`speckle_size` must be an integer >= 0, received 2.5"),
        (
            {"color_check_levels": -1},
            "`color_check_levels` must be None or a number >= 0, math.inf for no check, "
            "received -1",
        ),
        ({"color_check_levels": "off"}, "`color_check_levels` must be None or a number >= 0"),
        (
            {"out_of_view_quantile": 1.5},
            "`out_of_view_quantile` must be None or a number in [0, 1], received 1.5",
        ),
        ({"fill_color_per_px": -2}, "`fill_color_per_px` must be None or a finite number >= 0"),
        ({"fill_median_radius_px": -1}, "`fill_median_radius_px` must be an integer >= 0"),
        (
            {"fill_median_color_sigma": 0},
            "`fill_median_color_sigma` must be a finite number > 0, received 0",
        ),
        (
            {"fill_median_distance_sigma_px": float("nan")},
            "`fill_median_distance_sigma_px` must be a finite number > 0",
        ),
        ({"precision": "half"}, "`precision` must be one of auto, float32, mixed_bfloat16"),
        (
            {"weights": 3},
            "`weights` must be 'stereo', 'imagenet', None, a path or a stem, received 3",
        ),
        ({"weights": "nope.weights.h5"}, "`weights` nope.weights.h5: no such file"),
        ({"progress": "loud"}, "`progress` must be None or a callable"),
        ({"quality": "best"}, "`quality` must be one of 'fast', 'accurate', received 'best'"),
    ],
)
def test_settings_are_validated_in_the_constructor(settings, message):
    with pytest.raises(ParameterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        StereoMatcher(**settings)


def test_the_matchers_fill_is_the_benchmarks_densify():
    """`densify` (every method's fill in the benchmark) takes
    `fill_occlusions`' defaults; the matcher's own fill must be the same."""
    fill = inspect.signature(matching.fill_occlusions).parameters
    matcher = inspect.signature(StereoMatcher).parameters
    names = [name for name in fill if name not in ("disparity", "image")]
    assert len(names) == 6
    for name in names:
        assert matcher[f"fill_{name}"].default == fill[name].default, name


def test_a_range_as_wide_as_the_image_is_refused():
    left, right = _shipped()
    with pytest.raises(
        ParameterError, match="`max_disparity` 256 is not smaller than the image width"
    ):
        StereoMatcher(max_disparity=256).compute(left, right)


# ------------------------------------------------------------------ depth

CALIB = """cam0=[3979.911 0 1244.772; 0 3979.911 1019.507; 0 0 1]
cam1=[3979.911 0 1369.115; 0 3979.911 1019.507; 0 0 1]
doffs=124.343
baseline=193.001
width=2964
height=1988
ndisp=270
"""


def test_middlebury_calibration_and_depth(tmp_path):
    (tmp_path / "calib.txt").write_text(CALIB)
    c = read_middlebury_calibration(tmp_path / "calib.txt")
    assert (c.focal_px, c.cx, c.cy, c.doffs, c.baseline) == (
        3979.911,
        1244.772,
        1019.507,
        124.343,
        193.001,
    )
    disparity = np.array([[100.0, np.nan, -200.0]], np.float32)
    depth = depth_from_disparity(disparity, c.focal_px, c.baseline, c.doffs)
    assert depth[0, 0] == pytest.approx(193.001 * 3979.911 / 224.343, rel=1e-6)
    assert np.isnan(depth[0, 1:]).all()  # unknown, and behind the cameras
    # A map of images downscaled by 4: its disparities are 4x smaller, the
    # depth the same.
    quarter = depth_from_disparity(disparity / 4, c.focal_px, c.baseline, c.doffs, scale=0.25)
    np.testing.assert_allclose(quarter, depth, rtol=1e-6)


@pytest.mark.parametrize(
    "text, message",
    [
        ("baseline=1\n", "no cam0= line"),
        ("cam0=[1 0 2; 0 1 3]\nbaseline=1\n", "line 1: cam0 must be a 3x3 matrix"),
        ("cam0=[1 0 2; 0 1 3; 0 0 1]\nbaseline=far\n", "line 2: baseline is not a number"),
        ("cam0=[1 0 2; 0 1 3; 0 0 1]\nbaseline=-4\n", "`baseline` must be a finite number > 0"),
        ("cam0=[1 0 2; 0 1 3; 0 0 1]\njunk\n", "line 2: expected NAME=VALUE"),
    ],
)
def test_bad_calibration_files_are_one_clear_error(tmp_path, text, message):
    (tmp_path / "calib.txt").write_text(text)
    with pytest.raises(InputError, match=message):
        read_middlebury_calibration(tmp_path / "calib.txt")


def test_point_cloud_round_trips_through_a_ply_reader(tmp_path):
    plyfile = pytest.importorskip("plyfile")
    calibration = Calibration(focal_px=100.0, baseline=50.0, cx=2.0, cy=1.0)
    disparity = np.array([[10.0, 20.0, np.nan], [5.0, 10.0, 10.0]], np.float32)
    image = np.arange(18, dtype=np.uint8).reshape(2, 3, 3) * 10
    points, colors = point_cloud(disparity, image, calibration)
    write_ply(tmp_path / "p.ply", points, colors)
    vertices = plyfile.PlyData.read(str(tmp_path / "p.ply"))["vertex"]
    assert len(vertices) == 5
    z = 50.0 * 100.0 / np.array([10, 20, 5, 10, 10])
    np.testing.assert_allclose(vertices["z"], z, rtol=1e-6)
    np.testing.assert_allclose(
        vertices["x"], (np.array([0, 1, 0, 1, 2]) - 2.0) * z / 100, rtol=1e-6
    )
    np.testing.assert_allclose(
        vertices["y"], (np.array([0, 0, 1, 1, 1]) - 1.0) * z / 100, rtol=1e-6
    )
    np.testing.assert_array_equal(vertices["red"], image[np.isfinite(disparity)][:, 0])
    np.testing.assert_array_equal(vertices["blue"], image[np.isfinite(disparity)][:, 2])


def test_the_command_writes_depth_and_points(tmp_path):
    plyfile = pytest.importorskip("plyfile")
    (tmp_path / "calib.txt").write_text(CALIB.replace("3979.911", "500"))
    out = tmp_path / "o"
    result = run_cli(
        "demo",
        "stereo",
        os.path.join(DATA, "left.png"),
        os.path.join(DATA, "right.png"),
        "--max-disparity",
        64,
        "--calib",
        tmp_path / "calib.txt",
        "--out",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.output
    disparity, depth = np.load(out / "disparity.npy"), np.load(out / "depth.npy")
    np.testing.assert_allclose(depth, 193.001 * 500 / (disparity + 124.343), rtol=1e-5)
    vertices = plyfile.PlyData.read(str(out / "points.ply"))["vertex"]
    assert len(vertices) == np.isfinite(depth).sum()
    assert json.loads(result.stdout)["depth"]["points"] == len(vertices)
    assert sorted(p.name for p in out.iterdir()) == [
        "depth.npy",
        "disparity.npy",
        "disparity.png",
        "points.ply",
        "summary.json",
    ]
    assert_one_line_error(
        run_cli(
            "demo",
            "stereo",
            os.path.join(DATA, "left.png"),
            os.path.join(DATA, "right.png"),
            "--focal-px",
            0,
            "--baseline",
            1,
            "--out",
            tmp_path / "never",
        ),
        "--focal-px: must be a finite number > 0, received 0.0",
    )
    assert not (tmp_path / "never").exists()


# ------------------------------------------------------------------- EXIF


def _save_turned(image, path, orientation):
    """Stores `image` as a camera would with EXIF `orientation` 6 (the pixels
    turned 90 degrees counter-clockwise, shown turned back)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.rot90(image, 1).copy()).save(path, exif=exif)


def test_exif_orientation_is_applied_and_said(tmp_path):
    left, right = _shipped()
    for side, image in (("left", left), ("right", right)):
        _save_turned(image, tmp_path / f"{side}.png", 6)
        # The same pixels, with no tag to say they are turned.
        Image.fromarray(np.rot90(image, 1).copy()).save(tmp_path / f"untagged_{side}.png")
    result = run_cli(
        "demo",
        "stereo",
        tmp_path / "left.png",
        tmp_path / "right.png",
        "--max-disparity",
        MAX_DISPARITY,
        "--out",
        tmp_path / "o",
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["exif_orientation"] == {"left": 6, "right": 6}
    np.testing.assert_array_equal(np.load(tmp_path / "o" / "disparity.npy"), _reference().disparity)
    # One view tagged only: the size message says why.
    assert_one_line_error(
        run_cli(
            "demo",
            "stereo",
            tmp_path / "untagged_left.png",
            tmp_path / "right.png",
            "--out",
            tmp_path / "o2",
        ),
        "the right file's EXIF orientation: rotated 90 degrees",
    )


def test_the_command_warns_of_swapped_views(tmp_path):
    result = run_cli(
        "demo",
        "stereo",
        os.path.join(DATA, "right.png"),
        os.path.join(DATA, "left.png"),
        "--max-disparity",
        64,
        "--out",
        tmp_path / "o",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert "WARNING: the views look swapped" in result.stderr
    assert json.loads(result.stdout)["views_look_swapped"] is True
