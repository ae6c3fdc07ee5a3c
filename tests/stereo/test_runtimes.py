"""The stereo network without Keras: the shipped ONNX graph computes the
Keras stem's features, `StereoMatcher(runtime="onnx")` gives the Keras
runtime's map, and the command line starts without importing TensorFlow."""

import json
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from kerazoo import weights as W
from kerazoo.errors import ParameterError
from kerazoo.stereo import StereoMatcher
from kerazoo.stereo import stem as stem_lib
from kerazoo.stereo.matcher import choose_runtime
from kerazoo.stereo.onnx_features import FEATURES_ONNX, FEATURES_ONNX_OF, OnnxFeatures

from conftest import run_cli

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
DATA = os.path.join(ROOT, "demos", "data")


def _shipped_pair():
    return tuple(
        np.asarray(Image.open(os.path.join(DATA, f"{side}.png")).convert("RGB"))
        for side in ("left", "right")
    )


@pytest.mark.parametrize("quality", stem_lib.QUALITIES)
@pytest.mark.parametrize("shape", [(1, 48, 70, 3), (2, 33, 41, 3), (1, 16, 16, 3)])
def test_shipped_graph_computes_the_keras_stems_features(shape, quality):
    """Odd sides included: the graph pads to even as PixelPhases does."""
    folded = stem_lib.fold_batch_norm(stem_lib.load_stem("stereo", quality)[0], "float32")
    images = np.random.default_rng(0).uniform(0, 255, shape).astype("float32")
    expected = np.asarray(folded.predict_on_batch(images / 127.5 - 1.0))
    np.testing.assert_allclose(OnnxFeatures(quality=quality)(images), expected, atol=1e-4)


@pytest.mark.parametrize("quality", stem_lib.QUALITIES)
def test_shipped_files_are_verified_by_their_sha256(quality):
    for name in (FEATURES_ONNX_OF[quality], stem_lib.STEREO_WEIGHTS_OF[quality]):
        assert W.entry(name)["hash_algorithm"] == "sha256"
        assert W.verify(W.resolve(name, download=False), name)["verified"]


@pytest.mark.parametrize("quality", stem_lib.QUALITIES)
def test_onnx_runtime_gives_the_keras_runtimes_map(quality):
    left, right = _shipped_pair()
    onnx = StereoMatcher(runtime="onnx", quality=quality).compute(left, right)
    assert onnx.valid.mean() > 0.9
    reference = StereoMatcher(runtime="keras", precision="float32", quality=quality)
    reference = reference.compute(left, right)
    np.testing.assert_allclose(onnx.disparity, reference.disparity, atol=1e-3)
    np.testing.assert_array_equal(onnx.valid, reference.valid)


def test_the_two_qualities_are_different_networks():
    left, right = _shipped_pair()
    fast, accurate = (StereoMatcher(quality=q) for q in stem_lib.QUALITIES)
    assert (fast.weights_label, accurate.weights_label) == (
        "stereo-trained",
        "stereo-trained accurate",
    )
    features = [m.features_of(left[:64, :64].astype("float32")) for m in (fast, accurate)]
    assert np.abs(features[0] - features[1]).mean() > 0.01 * np.abs(features[0]).mean()


def test_auto_runs_onnx_where_it_can():
    assert StereoMatcher().runtime == "onnx"
    assert choose_runtime("auto", "stereo", "float32") == "onnx"
    assert choose_runtime("auto", "imagenet") == "keras"
    assert choose_runtime("auto", "stereo", "mixed_bfloat16") == "keras"
    assert choose_runtime("auto", None) == "keras"


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"weights": None}, "'onnx' runs the shipped stereo weights in float32 only"),
        ({"precision": "mixed_bfloat16"}, "received weights='stereo', precision='mixed_bfl"),
    ],
)
def test_onnx_runtime_refuses_what_it_cannot_run(settings, message):
    with pytest.raises(ParameterError, match=message) as e:
        StereoMatcher(runtime="onnx", **settings)
    assert e.value.param == "runtime"


def test_runtime_must_be_known():
    with pytest.raises(ParameterError, match="runtime.*must be one of 'auto', 'keras', 'onnx'"):
        StereoMatcher(runtime="tflite")


def test_a_corrupt_graph_falls_back_to_keras_with_a_warning(tmp_path, monkeypatch):
    package = tmp_path / "package"
    shutil.copytree(W._package_dir(), package)
    graph = package / W.entry(FEATURES_ONNX)["file"]
    graph.write_bytes(graph.read_bytes()[:-100])
    monkeypatch.setattr(W, "_package_dir", lambda: package)
    monkeypatch.setenv("KERAZOO_WEIGHTS", str(tmp_path / "none"))
    with pytest.warns(UserWarning, match="running the network with Keras"):
        matcher = StereoMatcher(max_disparity=8)
    assert matcher.runtime == "keras"
    with pytest.raises(W.WeightsError):
        StereoMatcher(max_disparity=8, runtime="onnx")


def test_command_says_which_runtime_ran(tmp_path):
    paths = [os.path.join(DATA, f"{side}.png") for side in ("left", "right")]
    maps = {}
    for runtime in ("onnx", "keras"):
        result = run_cli(
            "demo", "stereo", *paths, "--out", tmp_path / runtime, "--runtime", runtime,
            "--precision", "float32", "--json",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        assert summary["runtime"] == runtime and summary["precision"] == "float32"
        maps[runtime] = (np.load(tmp_path / runtime / "disparity.npy"), summary["similarity"])
    np.testing.assert_allclose(maps["onnx"][0], maps["keras"][0], atol=1e-3)
    assert maps["onnx"][1] == pytest.approx(maps["keras"][1], abs=1e-3)


def test_command_runs_the_accurate_network(tmp_path):
    paths = [os.path.join(DATA, f"{side}.png") for side in ("left", "right")]
    result = run_cli("demo", "stereo", *paths, "--out", tmp_path / "o", "--quality", "accurate",
                     "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["quality"] == "accurate" and summary["runtime"] == "onnx"
    assert summary["weights"] == "stereo-trained accurate"
    assert summary["disparity"]["valid_fraction"] > 0.9


def test_command_refuses_onnx_for_other_weights(tmp_path):
    from conftest import assert_one_line_error

    paths = [os.path.join(DATA, f"{side}.png") for side in ("left", "right")]
    result = run_cli("demo", "stereo", *paths, "--out", tmp_path / "o", "--runtime", "onnx",
                     "--weights", "none")  # fmt: skip
    assert_one_line_error(result, "--runtime: 'onnx' runs the shipped stereo weights")


def _commands(group, prefix=()):
    import click

    yield prefix
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, prefix + (name,))
        else:
            yield prefix + (name,)


# Run in fresh processes: what a command imports is what a user waits for.
_PROBE = """
import atexit, json, sys
atexit.register(lambda: print(json.dumps(sorted(m for m in ("keras", "tensorflow", "jax", "torch")
                                                if m in sys.modules)), file=sys.stderr))
from kerazoo.app.entry import main
sys.argv = ["kerazoo"] + sys.argv[1:]
main()
"""


def _heavy_modules_imported(*args, cwd=None):
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *map(str, args)],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stderr.strip().splitlines()[-1])


def test_stereo_command_runs_without_keras(tmp_path):
    paths = [os.path.join(DATA, f"{side}.png") for side in ("left", "right")]
    assert _heavy_modules_imported("demo", "stereo", *paths, "--out", tmp_path / "o") == []
    assert (tmp_path / "o" / "disparity.npy").is_file()


def test_listing_and_every_help_start_without_keras():
    from kerazoo.app.cli import cli

    for command in _commands(cli):
        assert _heavy_modules_imported(*command, "--help") == [], command
    assert _heavy_modules_imported("list") == []
    assert _heavy_modules_imported("list", "--pretrained", "--json") == []
    assert _heavy_modules_imported("weights", "list") == []


def test_registry_index_matches_the_registry():
    from kerazoo import registry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        live = registry.live_index()
    assert json.loads(registry.INDEX.read_text()) == live, (
        "kerazoo/registry_index.json is stale: run kerazoo.registry.write_index()"
    )
    assert registry.describe() == [e.as_dict() for e in registry.list_entries()]


def test_features_of_one_view_agree_and_are_float32():
    image = np.random.default_rng(1).uniform(0, 255, (40, 52, 3)).astype("float32")
    onnx = StereoMatcher(runtime="onnx").features_of(image)
    keras_f32 = StereoMatcher(runtime="keras", precision="float32").features_of(image)
    bf16 = StereoMatcher(runtime="keras", precision="mixed_bfloat16").features_of(image)
    assert onnx.shape == keras_f32.shape == (40, 52, 128)
    assert onnx.dtype == keras_f32.dtype == bf16.dtype == np.float32
    np.testing.assert_allclose(onnx, keras_f32, atol=1e-4)
