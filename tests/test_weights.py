"""kerazoo.weights: resolution on files of the real layout, generated here
(no network; see conftest's `generated`), verification, download from a
server on 127.0.0.1, import."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from kerazoo import weights as W

from conftest import ServeDirectory, copy_weights, offline_manifest, requires_extra, served_manifest


def test_manifest_fingerprints_match_keras_applications():
    files = W.load_manifest()
    for name, fn, top in [
        ("xception", keras.applications.Xception, True),
        ("xception_notop", keras.applications.Xception, False),
        ("inception_v3", keras.applications.InceptionV3, True),
        ("inception_v3_notop", keras.applications.InceptionV3, False),
    ]:
        assert files[name]["fingerprint"] == W.model_fingerprint(fn(include_top=top, weights=None))
        assert files[name]["hash_algorithm"] == "md5" and len(files[name]["hash"]) == 32
        assert files[name]["url"].endswith("/" + files[name]["file"])


@pytest.mark.parametrize("where", ["explicit", "user", "package", "cache"])
def test_each_step_of_the_search_order(weights_env, generated, where):
    if where == "explicit":
        path = copy_weights(generated, "xception_notop", weights_env["user"].parent / "elsewhere")
        assert W.resolve("xception_notop", path=path) == path
        return
    directory = weights_env[where]
    expected = copy_weights(generated, "xception_notop", directory)
    # Every later location also holds a copy: the earlier one must win.
    order = ["user", "package", "cache"]
    for later in order[order.index(where) + 1 :]:
        copy_weights(generated, "xception_notop", weights_env[later])
    assert W.resolve("xception_notop") == expected


def test_a_corrupt_earlier_copy_is_passed_over_with_a_warning(weights_env, generated):
    """A tampered or damaged copy is never used, and said; a verified copy
    later in the search path is used instead of failing the run."""
    bad = copy_weights(generated, "xception_notop", weights_env["user"])
    data = bytearray(bad.read_bytes())
    data[-100] ^= 0xFF
    bad.write_bytes(bytes(data))
    good = copy_weights(generated, "xception_notop", weights_env["cache"])
    with pytest.warns(UserWarning, match="does not match the xception_notop release"):
        assert W.resolve("xception_notop") == good
    assert bad.exists()  # never deleted
    good.unlink()
    with pytest.raises(
        W.WeightsVerificationError, match="does not match the xception_notop release"
    ):
        W.resolve("xception_notop")


def test_truncated_file(weights_env, generated):
    path = copy_weights(generated, "xception_notop", weights_env["user"])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(W.WeightsVerificationError, match="truncated or corrupt"):
        W.resolve("xception_notop")


def test_not_hdf5(weights_env):
    (weights_env["user"] / "xception_weights_tf_dim_ordering_tf_kernels_notop.h5").write_text(
        "<html>"
    )
    with pytest.raises(W.WeightsVerificationError, match="is not an HDF5 weights file"):
        W.resolve("xception_notop")


def test_wrong_architecture(weights_env, generated, tmp_path):
    inception = copy_weights(generated, "inception_v3_notop", tmp_path / "x")
    wrong = weights_env["user"] / generated["files"]["xception_notop"]["file"]
    wrong.write_bytes(inception.read_bytes())
    with pytest.raises(
        W.WeightsVerificationError, match="holds weights for inception_v3_notop, not xception_notop"
    ):
        W.resolve("xception_notop")


def test_offline_error_names_file_url_dirs_and_the_fix(
    weights_env, generated, monkeypatch, tmp_path
):
    offline_manifest(monkeypatch, tmp_path, generated["files"])
    with pytest.raises(W.WeightsNotFoundError) as err:
        W.resolve("xception_notop")
    message = str(err.value)
    assert "\n" not in message
    assert "xception_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "http://127.0.0.1:9/" in message
    for d in ("user", "package", "cache"):
        assert str(weights_env[d]) in message
    assert (
        "kerazoo weights import /path/to/xception_weights_tf_dim_ordering_tf_kernels_notop.h5"
        in message
    )
    assert list(weights_env["cache"].iterdir()) == []  # no temp files left behind


def test_real_download_from_localhost(weights_env, generated, tmp_path, monkeypatch, capsys):
    with ServeDirectory(generated["root"]) as server:
        served_manifest(generated, server.url, tmp_path, monkeypatch)
        path = W.resolve("xception_notop")
        assert server.requests == 1
        assert W.resolve("xception_notop") == path  # cached now: no second request
        assert server.requests == 1
    assert path == weights_env["cache"] / generated["files"]["xception_notop"]["file"]
    assert W.verify(path, "xception_notop")["verified"]
    assert "Downloading data from " + server.url in capsys.readouterr().out  # progress
    assert sorted(p.name for p in weights_env["cache"].iterdir()) == [path.name]


def test_download_cut_off_half_way_leaves_nothing(weights_env, generated, tmp_path, monkeypatch):
    with ServeDirectory(generated["root"], cut=True) as server:
        served_manifest(generated, server.url, tmp_path, monkeypatch)
        with pytest.raises(W.WeightsNotFoundError, match="kerazoo weights import"):
            W.resolve("xception_notop")
    assert list(weights_env["cache"].iterdir()) == []


def test_download_with_wrong_hash_leaves_nothing(weights_env, generated, tmp_path, monkeypatch):
    with ServeDirectory(generated["root"]) as server:
        served_manifest(generated, server.url, tmp_path, monkeypatch)
        manifest = json.loads(Path(os.environ["KERAZOO_MANIFEST"]).read_text())
        manifest["files"]["xception_notop"]["hash"] = "0" * 32
        Path(os.environ["KERAZOO_MANIFEST"]).write_text(json.dumps(manifest))
        with pytest.raises(W.WeightsNotFoundError, match="hash does not match"):
            W.fetch("xception_notop")
    assert list(weights_env["cache"].iterdir()) == []


def test_import_copies_under_the_canonical_name(weights_env, generated, tmp_path):
    src = generated["root"] / generated["files"]["inception_v3_notop"]["file"]
    renamed = tmp_path / "downloaded_somewhere.h5"
    renamed.write_bytes(src.read_bytes())
    final = W.import_file(renamed)  # identified by hash
    assert final == weights_env["cache"] / src.name
    assert W.resolve("inception_v3_notop") == final
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not weights")
    with pytest.raises(W.WeightsVerificationError, match="matches no release"):
        W.import_file(junk)


TF_KERAS_WRITER = """
import sys
import numpy as np
import tf_keras
tf_keras.utils.set_random_seed(3)
model = tf_keras.applications.Xception(include_top=False, weights=None, input_shape=(71, 71, 3))
model.save_weights(sys.argv[1])  # '.h5': the keras-applications layout
x = np.random.default_rng(0).uniform(-1, 1, (2, 71, 71, 3)).astype("float32")
np.savez(sys.argv[2], x=x, y=model.predict(x, verbose=0))
"""


@pytest.mark.slow
@requires_extra("tf_keras", "hub")  # tensorflow-hub installs tf_keras
def test_a_file_written_by_tf_keras_is_read_and_loaded(tmp_path):
    """An independent writer of the keras-applications layout (tf_keras, the
    Keras 2 that wrote the published files): kerazoo's reader identifies the
    architecture and the loaded model computes what tf_keras computed."""
    path = tmp_path / "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"
    result = subprocess.run(
        [sys.executable, "-c", TF_KERAS_WRITER, str(path), str(tmp_path / "ref.npz")],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert W.h5_fingerprint(path) == W.load_manifest()["xception_notop"]["fingerprint"]
    W.verify(path, "xception_notop", check_hash=False)
    from kerazoo import backbones

    model = backbones.xception(weights=path, input_shape=(71, 71, 3), include_preprocessing=False)
    ref = np.load(tmp_path / "ref.npz")
    np.testing.assert_allclose(model.predict(ref["x"], verbose=0), ref["y"], rtol=1e-3, atol=1e-4)


def test_an_unwritable_cache_is_named_not_blamed_on_the_download(weights_env, monkeypatch):
    def refuse(info, target_dir):
        raise PermissionError(13, "Permission denied", str(target_dir / ".kerazoo-download-x"))

    monkeypatch.setattr(W, "_download", refuse)
    with pytest.raises(W.WeightsNotFoundError) as error:
        W.resolve("xception_notop")
    message = str(error.value)
    assert "(Permission denied): set KERAS_HOME to a writable folder" in message
    assert "downloading" not in message


def test_import_never_replaces_a_different_file_under_the_canonical_name(
    weights_env, generated, tmp_path
):
    src = generated["root"] / generated["files"]["inception_v3_notop"]["file"]
    occupant = weights_env["cache"] / src.name
    occupant.parent.mkdir(parents=True, exist_ok=True)
    occupant.write_bytes(b"the user's own file of that name")
    with pytest.raises(
        W.WeightsVerificationError, match="exists and is not the inception_v3_notop release"
    ):
        W.import_file(src)
    assert occupant.read_bytes() == b"the user's own file of that name"
