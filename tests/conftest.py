"""Shared fixtures and helpers: one copy each (a tiny base model, the CLI
runner, the weights fixtures of the real layout, the TF-only marker)."""

import copy
import http.server
import json
import os
import threading
from pathlib import Path

# Quiet TensorFlow's C++ logs in test output; the backend itself comes from
# KERAS_BACKEND (tensorflow when unset), which .ci/run sets per run.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

from _h5 import write_keras_applications_h5

BACKEND = keras.backend.backend()
if BACKEND == "torch":
    import torch

    # torch 2.13's oneDNN (mkldnn) convolutions hung this 2-core CPU in a
    # 1x1 convolution's weight gradient (an OpenMP barrier spinning for
    # minutes, intermittently) and crash with one OpenMP thread: the tests
    # check kerazoo's layers, not oneDNN, so torch's own kernels run them.
    torch.backends.mkldnn.enabled = False
needs_tf = pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow backend only")


def requires_extra(module, extra):
    """A marker for tests of an extra: skip when the extra's module is not
    installed, and refuse to skip when $KERAZOO_REQUIRE_EXTRAS names the
    extra (CI installs them all). It looks the module up without importing it
    (tensorflow-hub, keras-cv and tf_keras import TensorFlow, which must not
    load into a torch session); an extra that is installed but broken fails
    in its tests' own imports, not as a skip."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        required = os.environ.get("KERAZOO_REQUIRE_EXTRAS", "").split(",")
        if extra in required:
            raise RuntimeError(
                f"the '{extra}' extra is required here "
                f"(KERAZOO_REQUIRE_EXTRAS) but {module} is missing"
            )
        return pytest.mark.skip(reason=f"the '{extra}' extra is not installed ({module})")
    return pytest.mark.usefixtures()


def need_extra(extra, *modules):
    """Inside a test: skip it when one of `modules` is missing, unless
    $KERAZOO_REQUIRE_EXTRAS names `extra` (then fail)."""
    import importlib.util

    missing = [m for m in modules if m and importlib.util.find_spec(m) is None]
    if missing:
        if extra in os.environ.get("KERAZOO_REQUIRE_EXTRAS", "").split(","):
            pytest.fail(f"the '{extra}' extra is required here but {missing} are missing")
        pytest.skip(f"the '{extra}' extra is not installed ({', '.join(missing)})")


def tiny_base(name="tiny"):
    """A two-conv functional model: a cheap stand-in for Xception."""
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="c1")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="c2")(x)
    return keras.Model(inputs, x, name=name)


def set_batch_norm_statistics(model, bn_names, seed=0, spread=1.0):
    """Gives each named BatchNormalization statistics far from a fresh
    layer's (gamma 1, beta 0, mean 0, variance 1): a fold, a graph or a halo
    that drops or misplaces any of them changes the model's output."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for name in bn_names:
        gamma, beta, mean, variance = (w.shape for w in model.get_layer(name).get_weights())
        model.get_layer(name).set_weights(
            [
                rng.uniform(0.5, 2, gamma),
                rng.normal(0, spread, beta),
                rng.normal(0, spread, mean),
                rng.uniform(0.5, 2, variance),
            ]
        )
    return model


def write_pair(root, **kwargs):
    """A generated stereo pair saved as root/left.png and root/right.png;
    returns the pair (with its ground truth)."""
    from PIL import Image

    from kerazoo.app.demos.stereo_data import synthetic_pair

    pair = synthetic_pair(**kwargs)
    Image.fromarray(pair.left).save(root / "left.png")
    Image.fromarray(pair.right).save(root / "right.png")
    return pair


def run_cli(*args):
    """`kerazoo ARGS` in this process (click's runner): the result has
    exit_code, stdout and stderr apart."""
    from click.testing import CliRunner

    from kerazoo.app.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def cli_json(*args):
    result = run_cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_one_line_error(result, message=None):
    """Exit code 2; the error is stderr's last line, alone on it and said
    once (progress lines may come before it); no traceback."""
    assert result.exit_code == 2, result.output
    last = result.stderr.rstrip("\n").split("\n")[-1]
    assert last.startswith("kerazoo: error: "), result.stderr
    assert result.stderr.count("kerazoo: error:") == 1, result.stderr
    assert result.stderr.endswith("\n") and "Traceback" not in result.output
    if message is not None:
        assert message in result.stderr, (message, result.stderr)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.utils.clear_session()
    yield
    keras.config.set_dtype_policy("float32")


# ----------------------------------------------------------------- weights


@pytest.fixture(scope="session")
def generated(tmp_path_factory):
    """Same-layout files for xception_notop and inception_v3_notop, a class
    index, and a manifest whose hashes are theirs (no network: each
    architecture is built with weights=None and saved in the
    keras-applications layout under its canonical file name)."""
    from kerazoo import weights as W

    root = tmp_path_factory.mktemp("generated")
    manifest = copy.deepcopy(W.load_manifest())
    builders = {
        "xception_notop": keras.applications.Xception,
        "inception_v3_notop": keras.applications.InceptionV3,
    }
    models = {}
    for name, fn in builders.items():
        keras.utils.set_random_seed(1)
        model = fn(include_top=False, weights=None)
        path = write_keras_applications_h5(model, root / manifest[name]["file"])
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
def weights_env(generated, tmp_path, monkeypatch):
    """Isolated search dirs: empty KERAZOO_WEIGHTS, package dir and Keras cache,
    and the generated files' manifest."""
    from kerazoo import weights as W

    dirs = {k: tmp_path / k for k in ("user", "package", "keras_home")}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("KERAZOO_MANIFEST", str(generated["manifest"]))
    monkeypatch.setenv("KERAZOO_WEIGHTS", str(dirs["user"]))
    monkeypatch.setenv("KERAS_HOME", str(dirs["keras_home"]))
    monkeypatch.setattr(W, "_package_dir", lambda: dirs["package"])
    dirs["cache"] = dirs["keras_home"] / "models"
    return dirs


def copy_weights(generated, name, directory):
    """Puts generated file `name` into `directory` under its canonical name."""
    directory.mkdir(parents=True, exist_ok=True)
    src = generated["root"] / generated["files"][name]["file"]
    dst = directory / src.name
    dst.write_bytes(src.read_bytes())
    return dst


def offline_manifest(monkeypatch, tmp_path, files=None):
    """A manifest whose URLs point at a closed local port: offline, fast.
    `files` defaults to the packaged manifest's entries."""
    from kerazoo import weights as W

    files = copy.deepcopy(files if files is not None else W.load_manifest())
    for info in files.values():
        info["url"] = "http://127.0.0.1:9/" + info["file"]
    path = tmp_path / "offline_manifest.json"
    path.write_text(json.dumps({"files": files}))
    monkeypatch.setenv("KERAZOO_MANIFEST", str(path))
    return path


class ServeDirectory:
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


def served_manifest(generated, url, tmp_path, monkeypatch):
    """The generated files' manifest with its URLs on `url`."""
    files = copy.deepcopy(generated["files"])
    for info in files.values():
        info["url"] = url + info["file"]
    path = tmp_path / "served_manifest.json"
    path.write_text(json.dumps({"files": files}))
    monkeypatch.setenv("KERAZOO_MANIFEST", str(path))
    return path
