"""demos/train_stereo.py in segments: a run stopped and resumed ends where an
uninterrupted one does, and a checkpoint refuses settings it was not made with."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--atrous-crop", "32", "64", "--max-disparity", "16", "--batch-size", "2",
        "--validation-crops", "4", "--total-steps", "4", "--checkpoint-every", "1",
        "--no-record"]  # fmt: skip


def _train(folder, *args):
    done = subprocess.run(
        [sys.executable, str(ROOT / "demos" / "train_stereo.py"), "--checkpoint-dir",
         str(folder), *TINY, *args],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    return done


def _h5_arrays(path):
    import h5py

    with h5py.File(path) as f:
        arrays = []
        f.visititems(lambda name, obj: arrays.append(obj[()]) if hasattr(obj, "shape") else None)
    return arrays


def _checkpoint(folder):
    weights = _h5_arrays(folder / "stem.weights.h5")
    with np.load(folder / "optimizer.npz") as saved:
        optimizer = [saved[k] for k in sorted(saved.files, key=lambda k: int(k[1:]))]
    return weights, optimizer, json.loads((folder / "state.json").read_text())


@pytest.mark.slow
def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    for args in (["--max-steps", "2"], ["--max-steps", "2", "--resume"]):
        done = _train(tmp_path / "resumed", *args)
        assert done.returncode == 0, done.stderr[-2000:]
    done = _train(tmp_path / "straight", "--max-steps", "4")
    assert done.returncode == 0, done.stderr[-2000:]
    resumed, straight = _checkpoint(tmp_path / "resumed"), _checkpoint(tmp_path / "straight")
    assert resumed[2]["step"] == straight[2]["step"] == 4
    assert [s["first_step"] for s in resumed[2]["segments"]] == [0, 2]
    assert len(resumed[1]) == len(straight[1]) and len(resumed[0]) == len(straight[0])
    for a, b in zip(resumed[0] + resumed[1], straight[0] + straight[1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # The weights moved, and every segment logged its validation curve.
    from kerazoo import weights

    start = _h5_arrays(weights.resolve("stereo_xception_stem", download=False))
    assert any(not np.allclose(a, b) for a, b in zip(resumed[0], start))
    assert all(s["curve"] for s in resumed[2]["segments"])

    for changed, name in ((["--learning-rate", "0.1"], "learning_rate"),
                          (["--photo-share", "0.5"], "photo_share"),
                          (["--census-weight", "0.5"], "census_weight")):  # fmt: skip
        refused = _train(tmp_path / "resumed", "--resume", *changed)
        assert refused.returncode != 0 and name in refused.stderr
    fresh = _train(tmp_path / "resumed", "--max-steps", "1")
    assert fresh.returncode != 0 and "--resume it" in fresh.stderr


@pytest.mark.slow
def test_the_accurate_network_trains_on_from_the_fast_one(tmp_path):
    done = _train(tmp_path / "accurate", "--quality", "accurate", "--max-steps", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    weights, _, state = _checkpoint(tmp_path / "accurate")
    assert state["settings"]["quality"] == "accurate"
    # The fast stem's 20 arrays, then the refining block's: two separable
    # convolutions, two BatchNormalizations.
    from kerazoo import weights as W

    fast = _h5_arrays(W.resolve("stereo_xception_stem", download=False))
    assert len(weights) == len(fast) + 2 * 2 + 2 * 4
    refused = _train(tmp_path / "accurate", "--resume", "--max-steps", "1")
    assert refused.returncode != 0 and "quality" in refused.stderr


@pytest.mark.slow
def test_a_wider_candidate_trains_on_from_the_accurate_network(tmp_path):
    accurate = ROOT / "weights" / "stereo_xception_stem_accurate.weights.h5"
    wider = ["--quality", "accurate", "--refine-dilations", "1", "2", "--init", str(accurate)]
    done = _train(tmp_path / "wider", *wider, "--max-steps", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    weights, _, state = _checkpoint(tmp_path / "wider")
    assert state["settings"]["refine_dilations"] == [1, 2]
    # The accurate network's arrays, then a second block's as many as the first's.
    assert len(weights) == len(_h5_arrays(accurate)) + 2 * 2 + 2 * 4
    refused = _train(tmp_path / "wider", "--quality", "accurate", "--init", str(accurate),
                     "--resume", "--max-steps", "1")  # fmt: skip
    assert refused.returncode != 0 and "refine_dilations" in refused.stderr
    fast = _train(tmp_path / "fast", "--refine-dilations", "1", "--max-steps", "1")
    assert fast.returncode == 2 and "`refine_dilations` must be" in fast.stderr
    assert "Traceback" not in fast.stderr
    share = _train(tmp_path / "share", "--photo-share", "1.5", "--max-steps", "1")
    assert share.returncode == 2
    assert "--photo-share: must be in [0, 1], received 1.5" in share.stderr
    census = _train(tmp_path / "census", "--census-weight", "1", "--max-steps", "1")
    assert census.returncode == 2
    assert "--census-weight: must be in [0, 1), received 1.0" in census.stderr
    ship = _train(tmp_path / "census", "--census-weight", "0.3", "--ship", "--max-steps", "1")
    assert ship.returncode == 2
    assert "the fast matcher blends 0.4, received 0.3 with --ship" in ship.stderr


@pytest.mark.slow
def test_a_run_on_the_census_blend_resumes_with_its_weight(tmp_path):
    folder = tmp_path / "census"
    for args in (["--max-steps", "1"], ["--max-steps", "1", "--resume"]):
        done = _train(folder, "--census-weight", "0.4", *args)
        assert done.returncode == 0, done.stderr[-2000:]
    _, _, state = _checkpoint(folder)
    assert state["step"] == 2 and state["settings"]["census_weight"] == 0.4
    assert all(s["curve"] for s in state["segments"])
    # A checkpoint from before the census blend resumes as a blend of 0.
    plain = tmp_path / "plain"
    assert _train(plain, "--max-steps", "1").returncode == 0
    saved = json.loads((plain / "state.json").read_text())
    del saved["settings"]["census_weight"]
    (plain / "state.json").write_text(json.dumps(saved))
    done = _train(plain, "--max-steps", "1", "--resume")
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def segments():
    sys.path.insert(0, str(ROOT / "demos"))
    try:
        import stereo_segments

        yield stereo_segments
    finally:
        sys.path.remove(str(ROOT / "demos"))


def test_census_scores_are_the_matchers_census_share(segments):
    rng = np.random.default_rng(0)
    left = rng.integers(0, 256, (2, 20, 40, 3)).astype(np.float32)
    shift = 3
    right = np.roll(left, -shift, axis=2)  # right (y, x - 3) shows left (y, x)
    scores = segments.census_scores(left, right, max_disparity=8, weight=0.4)
    assert scores.shape == (2, 20, 40, 9)
    # Where the census window lies inside both views, the true disparity's
    # codes are equal: similarity 1, times the weight.
    inside = scores[:, 3:-3, shift + 3 : -shift - 3, shift]
    np.testing.assert_allclose(inside, 0.4)
    assert (scores[:, 3:-3, shift + 3 : -shift - 3] < 0.4).any()  # other disparities differ
    for x in range(8):  # a match left of the right view's first column: neutral
        np.testing.assert_array_equal(scores[:, :, x, x + 1 :], 0.0)
    assert (np.abs(scores) <= 0.4 + 1e-6).all()


def test_the_blended_model_scores_as_the_matcher_blends(segments):
    import keras

    from kerazoo.stereo.stem import build_matching_model, xception_stem

    crop, max_disparity = (16, 32), 4
    matching_model = build_matching_model(
        max_disparity, stem=xception_stem(), input_shape=crop + (3,)
    )
    model = segments.blended_model(matching_model, crop, max_disparity, census_weight=0.25)
    rng = np.random.default_rng(1)
    views = [rng.uniform(0, 255, (1, *crop, 3)).astype(np.float32) for _ in range(2)]
    census = rng.uniform(-0.25, 0.25, (1, *crop, max_disparity + 1)).astype(np.float32)
    expected = 0.75 * keras.ops.convert_to_numpy(matching_model(views)) + census
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model([*views, census])), expected, atol=1e-5
    )
