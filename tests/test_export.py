"""kerazoo.export: every registered layer (in a small model), the stereo
matching model and a chapter model export to ONNX, tf_saved_model and LiteRT
where Keras supports the format on this backend, and the export, run in its
own runtime, gives the Keras outputs to 1e-4. Where Keras cannot, the refusal
is one line that says what to do. The README's export table is this matrix."""

from pathlib import Path

import keras
import numpy as np
import pytest

from kerazoo import export
from kerazoo.errors import ExportError, ParameterError
from kerazoo.layers import (
    CorrelationVolume,
    InceptionBlock,
    MergePixelPhases,
    PixelPhases,
    ResidualBlock,
    SiameseEncoder,
    StereoXception,
)

from conftest import assert_one_line_error, cli_json, need_extra, run_cli, tiny_base

BACKEND = keras.backend.backend()
# Keras 3.15: which backend writes which format (and the package it needs).
SUPPORTED = {
    "tensorflow": ("onnx", "tf_saved_model", "litert"),
    "jax": ("onnx", "tf_saved_model"),
    "torch": ("onnx",),
}[BACKEND]


def _image_model(layer):
    x_in = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(layer(x_in))
    return keras.Model(x_in, keras.layers.Dense(3)(x))


def _two_view_model(layer, shape):
    a, b = keras.Input(shape), keras.Input(shape)
    return keras.Model([a, b], layer([a, b]))


def _atrous_model():
    x_in = keras.Input((16, 16, 3))
    phases = PixelPhases(2)(x_in)
    y = keras.layers.Conv2D(4, 3, padding="same")(phases)
    return keras.Model(x_in, MergePixelPhases(2)([y, x_in]))


def _models():
    from kerazoo.app.models import chapter
    from kerazoo.stereo.stem import build_matching_model

    # Where views must share a size the exporters cannot know, it is fixed.
    view = (1, 80, 96, 3)
    return {
        "InceptionBlock": (
            lambda: _image_model(InceptionBlock(4, strides=2, use_batch_norm=True)),
            None,
        ),
        "ResidualBlock": (
            lambda: _image_model(ResidualBlock(8, preactivation=True, use_batch_norm=True)),
            None,
        ),
        "SiameseEncoder": (
            lambda: _two_view_model(SiameseEncoder(keras.layers.Dense(6), merge="euclidean"), (5,)),
            None,
        ),
        "StereoXception": (
            lambda: _two_view_model(StereoXception(base=tiny_base(), levels=[2, 4]), (16, 16, 3)),
            None,
        ),
        "CorrelationVolume": (
            lambda: _two_view_model(CorrelationVolume(6), (8, 12, 4)),
            [(2, 8, 12, 4)] * 2,
        ),
        "PixelPhases+MergePixelPhases": (_atrous_model, None),
        "stereo_matching": (lambda: build_matching_model(8), [view, view]),
        "chapter_posts": (lambda: chapter.posts(50, 4, 12), None),
    }


MODELS = list(_models())


def test_every_registered_layer_is_in_the_matrix():
    import kerazoo

    # HubLayer wraps a TF-Hub SavedModel: that SavedModel is already the export.
    layers = {e.name for e in kerazoo.list_entries("layer")} - {"HubLayer"}
    assert layers <= {name for model in MODELS for name in model.split("+")}


@pytest.mark.parametrize("export_format", ["onnx", "tf_saved_model", "litert"])
@pytest.mark.parametrize("name", MODELS)
def test_export_runs_and_matches_the_model(tmp_path, name, export_format):
    build, shapes = _models()[name]
    keras.utils.set_random_seed(0)
    model = build()
    out = tmp_path / f"model{export.SUFFIXES[export_format]}"
    if export_format not in SUPPORTED:
        with pytest.raises(ExportError, match="KERAS_BACKEND=tensorflow"):
            export.export_model(model, out, export_format, input_shapes=shapes)
        assert not out.exists()
        return
    need_extra(
        "export",
        export.REQUIRED_MODULES[(export_format, BACKEND)],
        {"onnx": "onnxruntime", "litert": "ai_edge_litert"}.get(export_format),
    )
    report = export.export_model(model, out, export_format, input_shapes=shapes)
    assert report["max_abs_difference"] <= 1e-4 and out.exists()
    # And again, on inputs of another batch size where it is free.
    signature = export.input_signature(model, shapes)
    inputs = export.sample_inputs(signature, batch=3, seed=1)
    assert export.check_exported(model, out, export_format, inputs) <= 1e-4
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporaries left


def test_a_wrong_export_is_refused_before_it_replaces_anything(tmp_path, monkeypatch):
    need_extra("export", export.REQUIRED_MODULES[("onnx", BACKEND)], "onnxruntime")
    model = _image_model(ResidualBlock(4))
    out = tmp_path / "model.onnx"
    out.write_bytes(b"the user's previous export")
    real = export.run_exported

    def off_by_one(*args):
        return [o + 1 for o in real(*args)]

    monkeypatch.setattr(export, "run_exported", off_by_one)
    with pytest.raises(ExportError, match="differs from the model's by up to 1"):
        export.export_model(model, out, "onnx")
    assert out.read_bytes() == b"the user's previous export"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_an_export_with_a_missing_output_is_refused(tmp_path, monkeypatch):
    need_extra("export", export.REQUIRED_MODULES[("onnx", BACKEND)], "onnxruntime")
    model = _models()["StereoXception"][0]()  # two outputs: one per level
    real = export.run_exported
    monkeypatch.setattr(export, "run_exported", lambda *args: real(*args)[:1])
    out = tmp_path / "model.onnx"
    with pytest.raises(ExportError, match="the onnx export has 1 outputs, the model 2"):
        export.export_model(model, out, "onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_refused_folder_is_named_as_the_user_gave_it(tmp_path, monkeypatch):
    # Not as the hidden staging folder beside it, which the user never named.
    import errno

    def refuse(prefix, dir):
        raise PermissionError(errno.EACCES, "Permission denied", f"{dir}/{prefix}k2x9")

    need_extra("export", export.REQUIRED_MODULES[("onnx", BACKEND)], "onnxruntime")
    monkeypatch.setattr(export.tempfile, "mkdtemp", refuse)
    out = tmp_path / "model.onnx"
    with pytest.raises(PermissionError) as raised:
        export.export_model(_models()["SiameseEncoder"][0](), out, "onnx", check=False)
    assert raised.value.filename == str(out)


@pytest.mark.parametrize(
    "target, export_format, match",
    [
        ("myproject", "tf_saved_model", r"myproject holds other files \(notes.txt\): give a new"),
        ("myproject/notes.txt", "tf_saved_model", "notes.txt is a file; a SavedModel is a folder"),
        ("myproject.onnx", "onnx", "myproject.onnx is a folder; onnx exports are files"),
    ],
)
def test_a_users_folder_or_file_is_refused_before_any_work(tmp_path, target, export_format, match):
    """Export replaces only its own earlier output: a folder holding anything
    but a SavedModel is the user's, and stays as it was."""
    for folder in ("myproject", "myproject.onnx"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "notes.txt").write_text("the user's work")
    model = _models()["SiameseEncoder"][0]()
    with pytest.raises(ParameterError, match=match):
        export.export_model(model, tmp_path / target, export_format)
    for folder in ("myproject", "myproject.onnx"):
        assert [p.name for p in (tmp_path / folder).iterdir()] == ["notes.txt"]
        assert (tmp_path / folder / "notes.txt").read_text() == "the user's work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["myproject", "myproject.onnx"]


def test_an_earlier_saved_model_export_is_replaced(tmp_path):
    if "tf_saved_model" not in SUPPORTED:
        pytest.skip(f"no tf_saved_model export under {BACKEND}")
    model = _image_model(ResidualBlock(4))
    out = tmp_path / "served"
    export.export_model(model, out, "tf_saved_model", check=False)
    assert "saved_model.pb" in {p.name for p in out.iterdir()}
    report = export.export_model(model, out, "tf_saved_model")
    assert report["max_abs_difference"] <= 1e-4
    assert [p.name for p in tmp_path.iterdir()] == ["served"]
    (tmp_path / "empty").mkdir()  # an empty folder is free to use too
    export.export_model(model, tmp_path / "empty", "tf_saved_model", check=False)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"format": "pt2"}, "`format` must be one of onnx, tf_saved_model, litert"),
        ({"path": "model.bin"}, "`path` must end with .onnx"),
        ({"input_shapes": [(None, 5)]}, "`input_shapes` must give 2 shape"),
        ({"input_shapes": [(None, 6), (None, 5)]}, r"\(None, 6\) does not fit the model's input"),
        ({"input_shapes": [(0, 5), (None, 5)]}, "sizes must be positive"),
    ],
)
def test_bad_arguments_raise_value_error(tmp_path, kwargs, match):
    model = _models()["SiameseEncoder"][0]()
    arguments = {"format": "onnx", "path": "model.onnx", **kwargs}
    arguments["path"] = tmp_path / arguments["path"]
    with pytest.raises(ValueError, match=match):
        export.export_model(model, **arguments)


def test_a_missing_exporter_is_named_after_the_arguments_are_checked(tmp_path, monkeypatch):
    """Where the exporter is not installed, export says which package to
    install, but a bad argument is still reported as such first."""
    module = export.REQUIRED_MODULES[("onnx", BACKEND)]
    real = export.importlib.util.find_spec
    monkeypatch.setattr(
        export.importlib.util,
        "find_spec",
        lambda name, *a: None if name == module else real(name, *a),
    )
    model = _models()["SiameseEncoder"][0]()
    with pytest.raises(ValueError, match="`path` must end with .onnx"):
        export.export_model(model, tmp_path / "model.bin", "onnx")
    package = module.replace("_", "-")
    with pytest.raises(ExportError, match=f"needs {package}, which is not installed") as error:
        export.export_model(model, tmp_path / "model.onnx", "onnx")
    # Another backend is advice only where this one is not TensorFlow.
    assert ("KERAS_BACKEND=tensorflow" in str(error.value)) == (BACKEND != "tensorflow")
    assert list(tmp_path.iterdir()) == []


def test_string_inputs_cannot_be_exported():
    with pytest.raises(ExportError, match="string inputs"):
        export.sample_inputs([keras.InputSpec(shape=(None, 1), dtype="string")])


# ---------------------------------------------------------------- the CLI


def test_export_command(tmp_path):
    need_extra("export", export.REQUIRED_MODULES[("onnx", BACKEND)], "onnxruntime")
    model = _models()["ResidualBlock"][0]()
    model.save(tmp_path / "m.keras")
    summary = cli_json(
        "export", str(tmp_path / "m.keras"), str(tmp_path / "m.onnx"), "--format", "onnx"
    )
    assert summary["format"] == "onnx" and summary["max_abs_difference"] <= 1e-4
    assert summary["inputs"] == [[None, 16, 16, 3]] and (tmp_path / "m.onnx").is_file()
    import onnxruntime

    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    x = np.random.default_rng(0).standard_normal((2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(
        session.run(None, {session.get_inputs()[0].name: x})[0],
        model.predict(x, verbose=0),
        rtol=1e-4,
        atol=1e-4,
    )


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_export_command_names_an_unwritable_out(tmp_path):
    # /proc refuses new files even to root, so this holds under CI too.
    need_extra("export", export.REQUIRED_MODULES[("onnx", BACKEND)], "onnxruntime")
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(tmp_path / "m.keras")
    result = run_cli(
        "export",
        str(tmp_path / "m.keras"),
        "/proc/kerazoo-out.onnx",
        "--format",
        "onnx",
        "--no-check",
    )
    assert_one_line_error(result, "/proc/kerazoo-out.onnx: No such file or directory")


@pytest.mark.parametrize(
    "args,match",
    [
        (["missing.keras", "out.onnx", "--format", "onnx"], "missing.keras: no such model file"),
        (["m.keras", "out.bin", "--format", "onnx"], "OUT: must end with .onnx"),
        (
            ["m.keras", "out.onnx", "--format", "onnx", "--input-shape", "2xAx3"],
            "--input-shape: expected sizes like",
        ),
        (
            [
                "m.keras",
                "out.onnx",
                "--format",
                "onnx",
                "--input-shape",
                "1x5",
                "--input-shape",
                "1x6",
            ],
            "--input-shape: (1, 6) does not fit",
        ),
        (["m.keras", ".", "--format", "tf_saved_model"], "holds other files (m.keras)"),
    ],
)
def test_export_command_bad_input_is_one_line(tmp_path, args, match, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "." is this test's folder
    a, b = keras.Input((5,)), keras.Input((5,))
    keras.Model([a, b], SiameseEncoder(keras.layers.Dense(3), merge="euclidean")([a, b])).save(
        tmp_path / "m.keras"
    )
    args = [str(tmp_path / a) if a.endswith((".keras", ".onnx", ".bin")) else a for a in args]
    assert_one_line_error(run_cli("export", *args), match)


def test_an_input_too_large_to_check_is_refused_in_one_line(tmp_path):
    """`--input-shape 1x100000x100000x3` is refused in one line, not a MemoryError."""
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    with pytest.raises(ParameterError, match="is 30,000,000,000 values per input, over the"):
        export.export_model(model, tmp_path / "m.onnx", "onnx", [(1, 100000, 100000, 3)])
    assert list(tmp_path.iterdir()) == []


def test_tensorflows_own_write_errors_are_one_line(tmp_path, monkeypatch):
    if "tf_saved_model" not in SUPPORTED:
        pytest.skip(f"no tf_saved_model export under {BACKEND}")
    import tensorflow as tf

    model = _image_model(ResidualBlock(4))

    def full(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")

    monkeypatch.setattr(type(model), "export", full)
    with pytest.raises(
        ExportError,
        match="writing the tf_saved_model export failed: "
        "ResourceExhaustedError: No space left on device",
    ):
        export.export_model(model, tmp_path / "served", "tf_saved_model")
    assert list(tmp_path.iterdir()) == []
