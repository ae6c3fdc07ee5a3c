"""The stereo demo (7.160): the pipeline, the command, its outputs and errors."""

import functools
import json
import os

import keras
import numpy as np
import pytest
from conftest import assert_one_line_error, offline_manifest, run_cli, write_pair
from PIL import Image

from kerazoo.app.demos import stereo
from kerazoo.app.demos.stereo_data import bad_pixel_rate, synthetic_pair
from kerazoo.app.models.stereo import build_stereo_models


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    return root, write_pair(root, height=96, width=128, seed=3, max_disparity=20)


def test_demo_command_writes_outputs_and_json(pair_files, tmp_path):
    root, pair = pair_files
    out = tmp_path / "out"
    result = run_cli("demo", "stereo", root / "left.png", root / "right.png", "--weights", "none",
                  "--max-disparity", 24, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout is pure JSON with --json
    assert summary["weights"] == "random" and summary["precision"] == stereo.feature_policy()
    assert set(summary["seconds"]) >= {"features + correlation", "matching", "build model"}
    assert json.loads((out / "summary.json").read_text())["similarity"] == summary["similarity"]
    disparity = np.load(out / "disparity.npy")
    assert disparity.shape == (96, 128) and disparity.dtype == np.float32
    # Not the quality bar (that is benchmarks/stereo.py), but a bar a broken
    # matcher fails: at most half the errors of the best constant map.
    best_constant = min(bad_pixel_rate(np.full_like(disparity, d), pair.disparity)
                        for d in range(0, 25))
    assert bad_pixel_rate(disparity, pair.disparity) < 0.5 * best_constant
    with Image.open(out / "disparity.png") as figure:
        assert figure.width > 2 * 128 and figure.height >= 96
    assert sorted(p.name for p in out.iterdir()) == ["disparity.npy", "disparity.png",
                                                     "summary.json"]
    # Written through temporary files, yet with ordinary permissions.
    assert (out / "summary.json").stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_no_fill_leaves_nan(pair_files, tmp_path):
    root, _ = pair_files
    result = run_cli("demo", "stereo", root / "left.png", root / "right.png", "--no-fill",
                     "--max-disparity", 24, "--out", tmp_path / "o", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["weights"] == "stereo-trained"
    disparity = np.load(tmp_path / "o" / "disparity.npy")
    assert np.isnan(disparity).any() and np.isfinite(disparity).mean() > 0.5


def test_bfloat16_features_give_the_float32_map(pair_files, tmp_path):
    """--precision: the summary names the policy used, and bfloat16 features
    (auto's choice where the CPU has them) give the float32 map."""
    root, _ = pair_files
    maps = {}
    for precision in ("float32", "mixed_bfloat16"):
        result = run_cli("demo", "stereo", root / "left.png", root / "right.png", "--precision",
                         precision, "--max-disparity", 24, "--out", tmp_path / precision, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["precision"] == precision
        maps[precision] = np.load(tmp_path / precision / "disparity.npy")
    assert (np.abs(maps["mixed_bfloat16"] - maps["float32"]) <= 1).mean() > 0.99


def test_auto_says_loudly_when_it_falls_back(pair_files, tmp_path, monkeypatch):
    """Stereo weights that fail their hash (here: a manifest that expects
    another), no ImageNet file: `auto` warns twice and runs untrained."""
    from kerazoo import weights as W

    files = W.load_manifest()
    files["stereo_xception_stem"]["hash"] = "0" * 64
    offline_manifest(monkeypatch, tmp_path, files)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    root, _ = pair_files
    result = run_cli("demo", "stereo", root / "left.png", root / "right.png",
                     "--max-disparity", 24, "--out", tmp_path / "o", "--json")
    assert result.exit_code == 0, result.output
    assert "WARNING: the stereo-trained weights are not usable" in result.stderr
    assert "WARNING: ImageNet Xception weights not available, using UNTRAINED" in result.stderr
    assert json.loads(result.stdout)["weights"] == "random"
    assert_one_line_error(run_cli("demo", "stereo", root / "left.png", root / "right.png",
                                  "--weights", "stereo", "--out", tmp_path / "o2"),
                          "does not match the stereo_xception_stem release")


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _bad_inputs(root, tmp):
    (tmp / "text.png").write_text("not an image")
    data = (root / "left.png").read_bytes()
    (tmp / "truncated.png").write_bytes(data[: len(data) // 3])
    Image.fromarray(np.zeros((90, 120, 3), np.uint8)).save(tmp / "other_size.png")
    Image.fromarray(np.zeros((60, 60, 3), np.uint8)).save(tmp / "tiny.png")
    (tmp / "corrupt.h5").write_text("not weights")
    left, right = root / "left.png", root / "right.png"
    return [
        ([tmp / "missing.png", right], "missing.png: no such file"),
        ([tmp / "text.png", right], "not an image Pillow can read"),
        ([tmp / "truncated.png", right], "unreadable or truncated image"),
        ([left, tmp / "other_size.png"], "differ in size: 128x96 vs 120x90"),
        ([tmp / "tiny.png", tmp / "tiny.png"], "too small for Xception"),
        ([left, right, "--weights", tmp / "nope.h5"], "nope.h5: no such file"),
        ([left, right, "--weights", tmp / "corrupt.h5"], "is not an HDF5 weights file"),
        ([left, right, "--max-disparity", 500], "is not smaller than the image width"),
    ]


def test_bad_input_is_one_line_exit_2_and_writes_nothing(pair_files, tmp_path):
    root, _ = pair_files
    for args, message in _bad_inputs(root, tmp_path):
        out = tmp_path / "never"
        result = run_cli("demo", "stereo", *args, "--out", out)
        assert_one_line_error(result, message)
        assert not out.exists()


def test_imagenet_weights_offline_fail_clearly(pair_files, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAZOO_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    offline_manifest(monkeypatch, tmp_path)
    root, _ = pair_files
    result = run_cli("demo", "stereo", root / "left.png", root / "right.png", "--weights",
                  "imagenet", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "kerazoo weights import" in result.stderr
    assert not (tmp_path / "o").exists()


def test_large_pairs_are_decoded_downscaled(tmp_path):
    big = np.random.default_rng(0).integers(0, 255, (400, 500, 3), np.uint8)
    for name in ("l.png", "r.png"):
        Image.fromarray(big).save(tmp_path / name)
    left, right, scale, size = stereo.load_pair(tmp_path / "l.png", tmp_path / "r.png",
                                                max_pixels=50_000)
    assert size == (500, 400) and left.shape == right.shape
    assert left.shape[0] * left.shape[1] <= 50_000 and scale == pytest.approx(0.5)


def test_stereo_model_saves_and_reloads(tmp_path):
    keras.utils.set_random_seed(0)
    matching, similarity = build_stereo_models(16)
    pair = synthetic_pair(height=80, width=96, seed=5, max_disparity=12)
    x = [pair.left[None].astype("float32"), pair.right[None].astype("float32")]
    expected = keras.ops.convert_to_numpy(matching(x))
    assert expected.shape == (1, 80, 96, 17)  # full resolution
    matching.save(tmp_path / "stereo.keras")
    reloaded = keras.saving.load_model(tmp_path / "stereo.keras", safe_mode=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reloaded(x)), expected,
                               rtol=1e-5, atol=1e-5)
    # One stem for both models: the matching layers are the similarity's too.
    shared = matching.get_layer("shared_xception").features.get_layer("block1_conv1")
    pooled = similarity.get_layer("shared_xception_pooled").features.get_layer("block1_conv1")
    assert shared is pooled


def test_disparity_helpers():
    volume = np.full((2, 12, 5), -1.0, np.float32)
    for x in range(12):
        d = min(3, x)
        volume[:, x, d] = 1.0
    disparity, valid = stereo.disparity_from_cost(volume, fill=False, aggregate=False,
                                                  speckle_size=0)  # 14 px: a speckle
    assert np.allclose(disparity[:, 5:], 3) and valid[:, 5:].all()
    assert not valid[:, :2].any()  # matches on the right view's border are rejected
    filled = stereo.fill_occlusions(np.array([[np.nan, 5, np.nan, 2, np.nan]], np.float32),
                                    edge_px=0, behind_both_px=None)
    np.testing.assert_array_equal(filled, [[5, 5, 2, 2, 2]])
    up = stereo.upsample_disparity(np.full((4, 6), 2.0, np.float32), 11, 15, 2, 3)
    assert up.shape == (11, 15) and np.allclose(up, 4.0)
    spike = np.full((5, 5), 3.0, np.float32)
    spike[2, 2] = 40
    assert stereo.median3(spike)[2, 2] == 3


def test_fill_occlusions_at_the_left_edge():
    """A hole with a valid pixel to its left takes the farther of its row
    neighbours; one touching the left edge takes the nearest valid pixel
    right, above or below, so a background hidden behind a near object at
    the edge comes from the background around the object, and the band the
    right camera never sees (a column of holes) from its row (these rules
    alone: `edge_px=0`)."""
    fill = functools.partial(stereo.fill_occlusions, edge_px=0, behind_both_px=None)
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
    an occlusion, 1.5 px off, no longer sets the whole hole's value."""
    row = np.array([[4, 4, 4, 4, 5.5, np.nan, np.nan, 9.5, 9, 9, 9, 9]], np.float32)
    filled = stereo.fill_occlusions(row, edge_px=edge_px)
    expected = row.copy()
    expected[0, 5 - edge_px:7 + edge_px] = 4  # the farther side, beyond the edge pixels
    np.testing.assert_array_equal(filled, expected)
    untouched = np.array([[3, 3, 3, 3]], np.float32)  # no hole: nothing changes
    np.testing.assert_array_equal(stereo.fill_occlusions(untouched, edge_px=edge_px), untouched)


def test_a_hole_behind_both_its_row_neighbours_takes_its_column():
    """A hole whose left neighbour is nearer than its right one belongs to
    neither: it takes the farther of the nearest valid pixels above and
    below (the background between two objects), not the right object."""
    scene = np.full((9, 12), 5.0, np.float32)  # the background
    scene[2:7, :4] = 30  # a near object
    scene[2:7, 7:] = 20  # a nearer-than-background one, hiding...
    scene[2:7, 4:7] = np.nan  # ...the background between them
    scene[8, 4:7] = 6  # below the hole the background is a bit nearer
    filled = stereo.fill_occlusions(scene, edge_px=0, behind_both_px=1.0)
    np.testing.assert_array_equal(filled[2:7, 4:7], 5)
    old_rule = stereo.fill_occlusions(scene, edge_px=0, behind_both_px=None)
    np.testing.assert_array_equal(old_rule[2:7, 4:7], 20)
    scene[2:7, :4] = 20.5  # within the tolerance of the right one: the row decides
    np.testing.assert_array_equal(
        stereo.fill_occlusions(scene, edge_px=0, behind_both_px=1.0)[2:7, 4:7], 20)


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
    with_colour = stereo.fill_occlusions(disparity, edge_px=0, image=image)
    np.testing.assert_array_equal(with_colour, truth)
    by_distance = stereo.fill_occlusions(disparity, edge_px=0)
    assert (by_distance[10:30, :4] == 25).any()  # the background took the object's
    grey = image.mean(axis=-1)  # the two colours differ in grey too
    np.testing.assert_array_equal(stereo.fill_occlusions(disparity, edge_px=0, image=grey),
                                  truth)
    with pytest.raises(ValueError, match="`image` must be the left view, 40x30 pixels"):
        stereo.fill_occlusions(disparity, image=image[:, :20])


def test_weights_path_and_save_model(pair_files, tmp_path, generated, weights_env):
    """--weights PATH loads that file into the shared Xception (same features
    as building it with those weights); --save-model writes the matching model,
    which reloads and gives the volume the demo used."""
    root, _ = pair_files
    path = generated["root"] / generated["files"]["xception_notop"]["file"]
    result = run_cli("demo", "stereo", root / "left.png", root / "right.png", "--weights", path,
                     "--max-disparity", 24, "--out", tmp_path / "o",
                     "--save-model", tmp_path / "m.keras", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["weights"] == str(path) and summary["model"] == str(tmp_path / "m.keras")
    model = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    features = model.get_layer("shared_xception").features
    want = generated["models"]["xception_notop"].get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_array_equal(features.get_layer("block1_conv1").get_weights()[0], want)
    left, right = (np.asarray(Image.open(root / n), np.float32)[None]
                   for n in ("left.png", "right.png"))
    volume = keras.ops.convert_to_numpy(model([left, right]))[0]
    disparity, _ = stereo.disparity_from_cost(volume)
    assert np.isfinite(disparity).all()
