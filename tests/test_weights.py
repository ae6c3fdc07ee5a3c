"""Weights resolution on files of the real layout, generated here (no network).

The tests build each architecture with weights=None, save its weights in the
keras-applications layout under the canonical file name, and point a test
manifest (same URLs' shape, the generated files' hashes) at them.
"""

import copy
import http.server
import json
import os
import threading
from pathlib import Path

import keras
import numpy as np
import pytest
from click.testing import CliRunner

import kerazoo
import kerazoo_cli
from kerazoo import weights as W
from kerazoo.layers import StereoXception


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    """Same-layout files for xception_notop and inception_v3_notop, a class
    index, and a manifest whose hashes are theirs."""
    root = tmp_path_factory.mktemp("generated")
    manifest = copy.deepcopy(W.load_manifest())
    builders = {"xception_notop": keras.applications.Xception,
                "inception_v3_notop": keras.applications.InceptionV3}
    models = {}
    for name, fn in builders.items():
        keras.utils.set_random_seed(1)
        model = fn(include_top=False, weights=None)
        path = W.write_keras_applications_h5(model, root / manifest[name]["file"])
        manifest[name]["hash"] = W.file_hash(path, "md5")
        models[name] = model
    index = {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)}
    index_path = root / manifest["imagenet_class_index"]["file"]
    index_path.write_text(json.dumps(index))
    manifest["imagenet_class_index"]["hash"] = W.file_hash(index_path, "md5")
    manifest_path = root / "manifest.json"
    manifest_path.write_text(json.dumps({"version": 1, "files": manifest}))
    return {"root": root, "manifest": manifest_path, "files": manifest, "models": models}


@pytest.fixture
def env(generated, tmp_path, monkeypatch):
    """Isolated search dirs: empty KERAZOO_WEIGHTS, package dir and Keras cache."""
    dirs = {k: tmp_path / k for k in ("user", "package", "keras_home")}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("KERAZOO_MANIFEST", str(generated["manifest"]))
    monkeypatch.setenv("KERAZOO_WEIGHTS", str(dirs["user"]))
    monkeypatch.setenv("KERAS_HOME", str(dirs["keras_home"]))
    monkeypatch.setattr(W, "_package_dir", lambda: dirs["package"])
    dirs["cache"] = dirs["keras_home"] / "models"
    return dirs


def _copy(generated, name, directory):
    directory.mkdir(parents=True, exist_ok=True)
    src = generated["root"] / generated["files"][name]["file"]
    dst = directory / src.name
    dst.write_bytes(src.read_bytes())
    return dst


def _unreachable(monkeypatch, generated, tmp_path):
    """A manifest whose URLs point at a closed local port: offline, fast."""
    files = copy.deepcopy(generated["files"])
    for info in files.values():
        info["url"] = "http://127.0.0.1:9/" + info["file"]
    path = tmp_path / "offline_manifest.json"
    path.write_text(json.dumps({"files": files}))
    monkeypatch.setenv("KERAZOO_MANIFEST", str(path))


def test_manifest_fingerprints_match_keras_applications():
    files = W.load_manifest()
    for name, fn, top in [("xception", keras.applications.Xception, True),
                          ("xception_notop", keras.applications.Xception, False),
                          ("inception_v3", keras.applications.InceptionV3, True),
                          ("inception_v3_notop", keras.applications.InceptionV3, False)]:
        assert files[name]["fingerprint"] == W.model_fingerprint(fn(include_top=top, weights=None))
        assert files[name]["hash_algorithm"] == "md5" and len(files[name]["hash"]) == 32
        assert files[name]["url"].endswith("/" + files[name]["file"])


@pytest.mark.parametrize("where", ["explicit", "user", "package", "cache"])
def test_each_step_of_the_search_order(env, generated, where):
    if where == "explicit":
        path = _copy(generated, "xception_notop", env["user"].parent / "elsewhere")
        assert W.resolve("xception_notop", path=path) == path
        return
    directory = env[where]
    expected = _copy(generated, "xception_notop", directory)
    # Every later location also holds a copy: the earlier one must win.
    order = ["user", "package", "cache"]
    for later in order[order.index(where) + 1:]:
        _copy(generated, "xception_notop", env[later])
    assert W.resolve("xception_notop") == expected


def test_a_corrupt_earlier_copy_is_refused_not_skipped(env, generated):
    bad = _copy(generated, "xception_notop", env["user"])
    data = bytearray(bad.read_bytes())
    data[-100] ^= 0xFF
    bad.write_bytes(bytes(data))
    _copy(generated, "xception_notop", env["cache"])
    with pytest.raises(W.WeightsVerificationError, match="does not match the xception_notop release"):
        W.resolve("xception_notop")
    assert bad.exists()  # never deleted


def test_truncated_file(env, generated):
    path = _copy(generated, "xception_notop", env["user"])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(W.WeightsVerificationError, match="truncated or corrupt"):
        W.resolve("xception_notop")


def test_not_hdf5(env):
    (env["user"] / "xception_weights_tf_dim_ordering_tf_kernels_notop.h5").write_text("<html>")
    with pytest.raises(W.WeightsVerificationError, match="is not an HDF5 weights file"):
        W.resolve("xception_notop")


def test_wrong_architecture(env, generated, tmp_path):
    inception = _copy(generated, "inception_v3_notop", tmp_path / "x")
    wrong = env["user"] / generated["files"]["xception_notop"]["file"]
    wrong.write_bytes(inception.read_bytes())
    with pytest.raises(W.WeightsVerificationError,
                       match="holds weights for inception_v3_notop, not xception_notop"):
        W.resolve("xception_notop")


def test_offline_error_names_file_url_dirs_and_the_fix(env, generated, monkeypatch, tmp_path):
    _unreachable(monkeypatch, generated, tmp_path)
    with pytest.raises(W.WeightsNotFoundError) as err:
        W.resolve("xception_notop")
    message = str(err.value)
    assert "\n" not in message
    assert "xception_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "http://127.0.0.1:9/" in message
    for d in ("user", "package", "cache"):
        assert str(env[d]) in message
    assert "kerazoo weights import /path/to/xception_weights_tf_dim_ordering_tf_kernels_notop.h5" \
        in message
    assert list(env["cache"].iterdir()) == []  # no temp files left behind


class _Server:
    """Serves one directory on 127.0.0.1; `cut=True` sends half of each file."""

    def __init__(self, directory, cut=False):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = Path(directory) / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2] if outer.cut else data)
                self.wfile.flush()
                outer.requests += 1

            def log_message(self, *args):
                pass

        self.cut = cut
        self.requests = 0
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _served_manifest(generated, url, tmp_path, monkeypatch):
    files = copy.deepcopy(generated["files"])
    for info in files.values():
        info["url"] = url + info["file"]
    path = tmp_path / "served_manifest.json"
    path.write_text(json.dumps({"files": files}))
    monkeypatch.setenv("KERAZOO_MANIFEST", str(path))


def test_real_download_from_localhost(env, generated, tmp_path, monkeypatch, capsys):
    with _Server(generated["root"]) as server:
        _served_manifest(generated, server.url, tmp_path, monkeypatch)
        path = W.resolve("xception_notop")
        assert server.requests == 1
        assert W.resolve("xception_notop") == path  # cached now: no second request
        assert server.requests == 1
    assert path == env["cache"] / generated["files"]["xception_notop"]["file"]
    assert W.verify(path, "xception_notop")["verified"]
    assert "Downloading data from " + server.url in capsys.readouterr().out  # progress
    assert sorted(p.name for p in env["cache"].iterdir()) == [path.name]


def test_download_cut_off_half_way_leaves_nothing(env, generated, tmp_path, monkeypatch):
    with _Server(generated["root"], cut=True) as server:
        _served_manifest(generated, server.url, tmp_path, monkeypatch)
        with pytest.raises(W.WeightsNotFoundError, match="kerazoo weights import"):
            W.resolve("xception_notop")
    assert list(env["cache"].iterdir()) == []


def test_download_with_wrong_hash_leaves_nothing(env, generated, tmp_path, monkeypatch):
    with _Server(generated["root"]) as server:
        _served_manifest(generated, server.url, tmp_path, monkeypatch)
        manifest = json.loads(Path(os.environ["KERAZOO_MANIFEST"]).read_text())
        manifest["files"]["xception_notop"]["hash"] = "0" * 32
        Path(os.environ["KERAZOO_MANIFEST"]).write_text(json.dumps(manifest))
        with pytest.raises(W.WeightsNotFoundError, match="hash does not match"):
            W.fetch("xception_notop")
    assert list(env["cache"].iterdir()) == []


def test_import_copies_under_the_canonical_name(env, generated, tmp_path):
    src = generated["root"] / generated["files"]["inception_v3_notop"]["file"]
    renamed = tmp_path / "downloaded_somewhere.h5"
    renamed.write_bytes(src.read_bytes())
    final = W.import_file(renamed)  # identified by hash
    assert final == env["cache"] / src.name
    assert W.resolve("inception_v3_notop") == final
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not weights")
    with pytest.raises(W.WeightsVerificationError, match="matches no release"):
        W.import_file(junk)


def _cli(*args):
    return CliRunner().invoke(kerazoo_cli.cli, list(args))


def test_cli_weights_commands(env, generated, tmp_path):
    src = generated["root"] / generated["files"]["xception_notop"]["file"]
    listed = json.loads(_cli("weights", "list", "--json").output)
    assert {r["name"]: r["present"] for r in listed}["xception_notop"] is False

    result = _cli("weights", "import", str(src), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["verified"] is True

    listed = {r["name"]: r for r in json.loads(_cli("weights", "list", "--json").output)}
    assert listed["xception_notop"]["present"] and listed["xception_notop"]["verified"]
    assert listed["xception_notop"]["where"] == "keras cache"

    for target in ("xception_notop", str(src)):
        result = _cli("weights", "verify", target, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)[0]["verified"] is True

    bad = tmp_path / "bad.h5"
    bad.write_text("nope")
    for args in (["weights", "verify", str(bad)], ["weights", "import", str(bad)],
                 ["weights", "verify", "inception_v3"], ["weights", "fetch", "nope"]):
        result = _cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert result.output.startswith("kerazoo: error: ") and result.output.count("\n") == 1
        assert "Traceback" not in result.output


def test_cli_fetch_offline_is_one_line(env, generated, monkeypatch, tmp_path):
    _unreachable(monkeypatch, generated, tmp_path)
    result = _cli("weights", "fetch", "xception_notop", "--dir", str(tmp_path / "t"))
    assert result.exit_code == 2
    # stdout shows the download attempt; the error is one line on stderr.
    assert result.stderr.startswith("kerazoo: error: ") and result.stderr.count("\n") == 1
    assert "kerazoo weights import" in result.stderr
    assert list((tmp_path / "t").iterdir()) == []


def test_backbone_loads_resolved_weights_and_carries_preprocessing(env, generated, tmp_path):
    _copy(generated, "inception_v3_notop", env["user"])
    model = kerazoo.backbones.inception_v3(weights="imagenet", pooling="avg",
                                           input_shape=(75, 75, 3))
    reference = generated["models"]["inception_v3_notop"]
    x = np.random.default_rng(0).uniform(0, 255, (2, 75, 75, 3)).astype("float32")
    base_out = keras.ops.convert_to_numpy(
        keras.layers.GlobalAveragePooling2D()(reference(x / 127.5 - 1.0)))
    np.testing.assert_allclose(model.predict(x, verbose=0), base_out, rtol=1e-4, atol=1e-4)
    path = tmp_path / "inception.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), base_out, rtol=1e-4, atol=1e-4)


def test_backbone_from_a_path_and_your_own_weights(env, generated, tmp_path):
    own = tmp_path / "finetuned.h5"
    keras.utils.set_random_seed(7)
    W.write_keras_applications_h5(keras.applications.Xception(include_top=False, weights=None),
                                  own)
    model = kerazoo.backbones.xception(weights=own, include_preprocessing=False)
    inception_file = generated["root"] / generated["files"]["inception_v3_notop"]["file"]
    with pytest.raises(W.WeightsVerificationError, match="holds weights for inception_v3_notop"):
        kerazoo.backbones.xception(weights=inception_file)
    assert model.count_params() == 20_861_480


def test_stereo_xception_imagenet_goes_through_the_same_resolution(env, generated, monkeypatch,
                                                                   tmp_path):
    _copy(generated, "xception_notop", env["package"])
    stereo = StereoXception(weights="imagenet", input_shape=(71, 71, 3))
    want = generated["models"]["xception_notop"].get_layer("block1_conv1").get_weights()[0]
    got = stereo.features.get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_array_equal(got, want)
    _unreachable(monkeypatch, generated, tmp_path)
    (env["package"] / generated["files"]["xception_notop"]["file"]).unlink()
    with pytest.raises(W.WeightsNotFoundError, match="kerazoo weights import"):
        StereoXception(weights="imagenet")


def test_decode_top5(env, generated):
    _copy(generated, "imagenet_class_index", env["cache"])
    preds = np.full((2, 1000), 1e-4, "float32")
    preds[0, [3, 7, 1, 999, 500]] = [0.5, 0.2, 0.1, 0.05, 0.01]
    top = kerazoo.backbones.decode(preds, top=5)
    assert [t[1] for t in top[0]] == ["class_3", "class_7", "class_1", "class_999", "class_500"]
    assert top[0][0] == ("n00000003", "class_3", pytest.approx(0.5))
    with pytest.raises(ValueError, match=r"received: predictions.shape=\(2, 10\)"):
        kerazoo.backbones.decode(np.zeros((2, 10)))


@pytest.mark.parametrize("kwargs,match", [
    ({"pooling": "sum"}, "received: pooling='sum'"),
    ({"weights": 3}, "received: weights=3"),
    ({"include_top": True, "classes": 10}, "received: classes=10"),
    ({"input_shape": (32, 32, 3)}, r"received: input_shape=\(32, 32, 3\)"),
])
def test_backbone_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kerazoo.backbones.xception(**kwargs)


def test_backbones_are_registered():
    names = {e.name for e in kerazoo.list_entries("backbone")}
    assert names == {"inception_v3", "xception"}
    model = kerazoo.create("xception", weights=None, include_top=True, include_preprocessing=False)
    assert model.output_shape == (None, 1000)
