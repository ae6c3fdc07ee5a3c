"""The stereo demo (7.160): the pipeline, the command, its outputs and errors."""

import json
import os

import keras
import numpy as np
import pytest
from PIL import Image

from kerazoo.app.demos import stereo
from kerazoo.app.demos.stereo_data import synthetic_pair
from kerazoo.app.models.stereo import build_similarity_model
from kerazoo.stereo import bad_pixel_rate
from kerazoo.stereo.stem import build_matching_model, feature_policy, load_stem

from conftest import assert_one_line_error, offline_manifest, run_cli, write_pair


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    return root, write_pair(root, height=96, width=128, seed=3, max_disparity=20)


def test_demo_command_writes_outputs_and_json(pair_files, tmp_path):
    root, pair = pair_files
    out = tmp_path / "out"
    result = run_cli(
        "demo",
        "stereo",
        root / "left.png",
        root / "right.png",
        "--weights",
        "none",
        "--max-disparity",
        24,
        "--out",
        out,
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout is pure JSON with --json
    assert summary["weights"] == "random" and summary["precision"] == feature_policy()
    assert set(summary["seconds"]) >= {"features + correlation", "matching", "build model"}
    assert json.loads((out / "summary.json").read_text())["similarity"] == summary["similarity"]
    disparity = np.load(out / "disparity.npy")
    assert disparity.shape == (96, 128) and disparity.dtype == np.float32
    # Not the quality bar (that is benchmarks/stereo.py), but a bar a broken
    # matcher fails: at most half the errors of the best constant map.
    best_constant = min(
        bad_pixel_rate(np.full_like(disparity, d), pair.disparity, 4) for d in range(0, 25)
    )
    assert bad_pixel_rate(disparity, pair.disparity, 4) < 0.5 * best_constant
    with Image.open(out / "disparity.png") as figure:
        assert figure.width > 2 * 128 and figure.height >= 96
    assert sorted(p.name for p in out.iterdir()) == [
        "disparity.npy",
        "disparity.png",
        "summary.json",
    ]
    # Nothing else beside it: no lock file, no staging folder.
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    # Written through temporary files, yet with ordinary permissions.
    assert (out / "summary.json").stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_no_fill_leaves_nan(pair_files, tmp_path):
    root, _ = pair_files
    result = run_cli(
        "demo",
        "stereo",
        root / "left.png",
        root / "right.png",
        "--no-fill",
        "--max-disparity",
        24,
        "--out",
        tmp_path / "o",
        "--json",
    )
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
        result = run_cli(
            "demo",
            "stereo",
            root / "left.png",
            root / "right.png",
            "--precision",
            precision,
            "--max-disparity",
            24,
            "--out",
            tmp_path / precision,
            "--json",
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["precision"] == precision
        maps[precision] = np.load(tmp_path / precision / "disparity.npy")
    assert (np.abs(maps["mixed_bfloat16"] - maps["float32"]) <= 1).mean() > 0.99


def test_auto_says_loudly_when_it_falls_back(pair_files, tmp_path, monkeypatch):
    """Stereo weights that fail their hash (here: a manifest that expects
    others, for the Keras file and the ONNX graph), no ImageNet file: `auto`
    warns and runs untrained."""
    from kerazoo import weights as W

    files = W.load_manifest()
    files["stereo_xception_stem"]["hash"] = "0" * 64
    files["stereo_xception_stem_onnx"]["hash"] = "0" * 64
    offline_manifest(monkeypatch, tmp_path, files)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    root, _ = pair_files
    result = run_cli(
        "demo",
        "stereo",
        root / "left.png",
        root / "right.png",
        "--max-disparity",
        24,
        "--out",
        tmp_path / "o",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert "WARNING: the stereo-trained weights are not usable" in result.stderr
    assert "WARNING: ImageNet Xception weights not available, using UNTRAINED" in result.stderr
    assert json.loads(result.stdout)["weights"] == "random"
    assert_one_line_error(
        run_cli(
            "demo",
            "stereo",
            root / "left.png",
            root / "right.png",
            "--weights",
            "stereo",
            "--out",
            tmp_path / "o2",
        ),
        "does not match the stereo_xception_stem release",
    )


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
        ([left, right, "--max-disparity", 1], "--max-disparity: must be at least 4"),
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
    result = run_cli(
        "demo",
        "stereo",
        root / "left.png",
        root / "right.png",
        "--weights",
        "imagenet",
        "--out",
        tmp_path / "o",
    )
    assert result.exit_code == 2
    assert "kerazoo weights import" in result.stderr
    assert not (tmp_path / "o").exists()


def test_large_pairs_are_decoded_downscaled(tmp_path):
    big = np.random.default_rng(0).integers(0, 255, (400, 500, 3), np.uint8)
    for name in ("l.png", "r.png"):
        Image.fromarray(big).save(tmp_path / name)
    left, right, scale, size, _ = stereo.load_pair(
        tmp_path / "l.png", tmp_path / "r.png", max_pixels=50_000
    )
    assert size == (500, 400) and left.shape == right.shape
    assert left.shape[0] * left.shape[1] <= 50_000 and scale == pytest.approx(0.5)


def test_stereo_model_saves_and_reloads(tmp_path):
    keras.utils.set_random_seed(0)
    stem = load_stem(None)[0]
    matching, similarity = build_matching_model(16, stem=stem), build_similarity_model(stem)
    pair = synthetic_pair(height=80, width=96, seed=5, max_disparity=12)
    x = [pair.left[None].astype("float32"), pair.right[None].astype("float32")]
    expected = keras.ops.convert_to_numpy(matching(x))
    assert expected.shape == (1, 80, 96, 17)  # full resolution
    matching.save(tmp_path / "stereo.keras")
    reloaded = keras.saving.load_model(tmp_path / "stereo.keras", safe_mode=True)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(reloaded(x)), expected, rtol=1e-5, atol=1e-5
    )
    # One stem for both models: the matching layers are the similarity's too.
    shared = matching.get_layer("shared_xception").features.get_layer("block1_conv1")
    pooled = similarity.get_layer("shared_xception_pooled").features.get_layer("block1_conv1")
    assert shared is pooled


def test_weights_path_and_save_model(pair_files, tmp_path, generated, weights_env):
    """--weights PATH loads that file into the shared Xception (same features
    as building it with those weights); --save-model writes the matching model,
    which reloads and gives the volume the demo used."""
    root, _ = pair_files
    path = generated["root"] / generated["files"]["xception_notop"]["file"]
    result = run_cli(
        "demo",
        "stereo",
        root / "left.png",
        root / "right.png",
        "--weights",
        path,
        "--max-disparity",
        24,
        "--out",
        tmp_path / "o",
        "--save-model",
        tmp_path / "m.keras",
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["weights"] == str(path) and summary["model"] == str(tmp_path / "m.keras")
    model = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    features = model.get_layer("shared_xception").features
    want = generated["models"]["xception_notop"].get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_array_equal(features.get_layer("block1_conv1").get_weights()[0], want)
    left, right = (
        np.asarray(Image.open(root / n), np.float32)[None] for n in ("left.png", "right.png")
    )
    volume = keras.ops.convert_to_numpy(model([left, right]))[0]
    built = build_matching_model(24, stem=load_stem(str(path))[0])
    np.testing.assert_allclose(
        volume, keras.ops.convert_to_numpy(built([left, right]))[0], atol=1e-5
    )


@pytest.mark.parametrize(
    "pixels, max_disparity",
    [(512 * 384, 128), (741 * 500, 70), (1155 * 866, 288), (6000 * 4000, 1500),
     (12000 * 8334, 3000)],
)  # fmt: skip
def test_the_matched_size_bounds_the_correlation_volume(pixels, max_disparity):
    """At most 1 MP, and a volume (pixels x disparities, scaled alike) of at
    most MAX_VOLUME_BYTES; pairs that fit already are not touched."""
    matched = stereo.pixels_within_budget(pixels, max_disparity)
    scale = (matched / pixels) ** 0.5
    volume = matched * (max_disparity * scale + 1) * 4
    assert matched <= stereo.MAX_PIXELS and volume <= stereo.MAX_VOLUME_BYTES * 1.001
    if pixels * (max_disparity + 1) * 4 <= stereo.MAX_VOLUME_BYTES:
        assert matched == pixels  # the shipped pair and Motorcycle as they are
    else:
        assert volume >= 0.99 * stereo.MAX_VOLUME_BYTES  # no smaller than it must be
