"""The stereo demo: CorrelationVolume, the pipeline, the command and its errors."""

import json
import os

import keras
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import kerazoo_cli
from kerazoo._io import atomic_write, read_image_rgb
from kerazoo.demos import stereo
from kerazoo.demos.stereo_data import bad_pixel_rate, synthetic_pair
from kerazoo.layers import CorrelationVolume
from kerazoo.models.stereo import build_stereo_models


def test_correlation_volume_finds_the_shift():
    rng = np.random.default_rng(0)
    right = rng.normal(size=(1, 3, 20, 6)).astype("float32")
    for shift in (0, 2, 5):
        left = np.roll(right, shift, axis=2)
        volume = keras.ops.convert_to_numpy(CorrelationVolume(6)([left, right]))
        best = volume[0, :, shift:].argmax(-1)
        assert (best == shift).all()
        # Normalized scores are cosines; the true match scores 1.
        np.testing.assert_allclose(volume[0, :, shift:, shift], 1.0, atol=1e-5)
    assert (volume[0, :, 0, 1:] == -1).all()  # no partner left of the border


def test_correlation_volume_needs_matching_shapes():
    with pytest.raises(ValueError, match="same size"):
        CorrelationVolume(3)([keras.Input((4, 8, 2)), keras.Input((4, 9, 2))])


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    pair = synthetic_pair(height=96, width=128, seed=3, max_disparity=20)
    Image.fromarray(pair.left).save(root / "left.png")
    Image.fromarray(pair.right).save(root / "right.png")
    return root, pair


def _cli(*args):
    return CliRunner().invoke(kerazoo_cli.cli, [str(a) for a in args])


def test_demo_command_writes_outputs_and_json(pair_files, tmp_path):
    root, pair = pair_files
    out = tmp_path / "out"
    result = _cli("demo", "stereo", root / "left.png", root / "right.png", "--weights", "none",
                  "--max-disparity", 24, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout is pure JSON with --json
    assert summary["weights"] == "random" and -1 <= summary["similarity"] <= 1
    assert set(summary["seconds"]) >= {"features + correlation", "matching", "build model"}
    assert json.loads((out / "summary.json").read_text())["similarity"] == summary["similarity"]
    disparity = np.load(out / "disparity.npy")
    assert disparity.shape == (96, 128) and disparity.dtype == np.float32
    # Sanity, not the quality bar (that is benchmarks/stereo.py): a small
    # generated pair must come out mostly right even with random features.
    assert bad_pixel_rate(disparity, pair.disparity) < 0.35
    with Image.open(out / "disparity.png") as figure:
        assert figure.width > 2 * 128 and figure.height >= 96
    assert sorted(p.name for p in out.iterdir()) == ["disparity.npy", "disparity.png",
                                                     "summary.json"]
    # Written through temporary files, yet with ordinary permissions.
    assert (out / "summary.json").stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_no_fill_leaves_nan_and_auto_warns(pair_files, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAZOO_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    root, _ = pair_files
    result = _cli("demo", "stereo", root / "left.png", root / "right.png", "--no-fill",
                  "--max-disparity", 24, "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "WARNING: ImageNet Xception weights not available, using UNTRAINED" in result.stderr
    disparity = np.load(tmp_path / "o" / "disparity.npy")
    assert np.isnan(disparity).any() and np.isfinite(disparity).mean() > 0.5


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
        result = _cli("demo", "stereo", *args, "--out", out)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (message, result.stderr)
        assert result.stderr.count("kerazoo: error:") == 1 and "Traceback" not in result.output
        assert not out.exists()


def test_imagenet_weights_offline_fail_clearly(pair_files, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAZOO_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    manifest = json.loads(open(kerazoo_weights_manifest()).read())
    for info in manifest["files"].values():
        info["url"] = "http://127.0.0.1:9/" + info["file"]
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("KERAZOO_MANIFEST", str(tmp_path / "m.json"))
    root, _ = pair_files
    result = _cli("demo", "stereo", root / "left.png", root / "right.png", "--weights",
                  "imagenet", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "kerazoo weights import" in result.stderr
    assert not (tmp_path / "o").exists()


def kerazoo_weights_manifest():
    from kerazoo import weights

    return weights.manifest_path()


@pytest.mark.parametrize("mode", ["RGBA", "L", "I;16", "P"])
def test_image_formats(tmp_path, mode):
    rgb = np.random.default_rng(0).integers(0, 255, (80, 90, 3), np.uint8)
    if mode == "I;16":
        image = Image.fromarray((rgb[..., 0].astype(np.uint16) * 257))
    else:
        image = Image.fromarray(rgb).convert(mode)
    image.save(tmp_path / "x.png")
    out = read_image_rgb(tmp_path / "x.png")
    assert out.shape == (80, 90, 3) and out.dtype == np.float32 and out.max() <= 255
    if mode == "I;16":
        np.testing.assert_allclose(out[..., 0], rgb[..., 0], atol=1)


def test_large_pairs_are_downscaled(tmp_path):
    big = np.random.default_rng(0).integers(0, 255, (400, 500, 3), np.uint8)
    for name in ("l.png", "r.png"):
        Image.fromarray(big).save(tmp_path / name)
    original, left, right, scale = stereo.load_pair(tmp_path / "l.png", tmp_path / "r.png",
                                                    max_pixels=50_000)
    assert original.shape == (400, 500, 3)
    assert left.shape[0] * left.shape[1] <= 50_000 and scale == pytest.approx(0.5)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    def failing(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "out.npy", failing)
    assert list(tmp_path.iterdir()) == []


def test_stereo_model_saves_and_reloads(tmp_path):
    keras.utils.set_random_seed(0)
    matching, similarity = build_stereo_models(16)
    pair = synthetic_pair(height=80, width=96, seed=5, max_disparity=12)
    x = [pair.left[None].astype("float32"), pair.right[None].astype("float32")]
    expected = keras.ops.convert_to_numpy(matching(x))
    matching.save(tmp_path / "stereo.keras")
    reloaded = keras.saving.load_model(tmp_path / "stereo.keras", safe_mode=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(reloaded(x)), expected,
                               rtol=1e-5, atol=1e-5)
    # One base for both models: the matching layers are the similarity's too.
    shared = matching.get_layer("shared_xception").features.get_layer("block1_conv1")
    deep = similarity.get_layer("shared_xception_deep").features.get_layer("block1_conv1")
    assert shared is deep


def test_disparity_helpers():
    volume = np.full((2, 12, 5), -1.0, np.float32)
    for x in range(12):
        d = min(3, x)
        volume[:, x, d] = 1.0
    disparity, valid = stereo.disparity_from_cost(volume, fill=False)
    assert np.allclose(disparity[:, 5:], 3) and valid[:, 5:].all()
    assert not valid[:, :2].any()  # matches on the right view's border are rejected
    filled = stereo.fill_occlusions(np.array([[np.nan, 5, np.nan, 2, np.nan]], np.float32))
    np.testing.assert_array_equal(filled, [[5, 5, 2, 2, 2]])
    up = stereo.upsample_disparity(np.full((4, 6), 2.0, np.float32), 11, 15, 2, 3)
    assert up.shape == (11, 15) and np.allclose(up, 4.0)
