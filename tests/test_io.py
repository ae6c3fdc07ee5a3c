"""kerazoo._io: image reading in every mode, atomic writes."""

import os
import re

import numpy as np
import pytest
from PIL import Image

from kerazoo._io import atomic_write, read_image_rgb
from kerazoo.errors import InputError


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "I;16", "P"])
def test_image_formats(tmp_path, mode):
    rgb = np.random.default_rng(0).integers(0, 255, (80, 90, 3), np.uint8)
    image = (
        Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
        if mode == "I;16"
        else Image.fromarray(rgb).convert(mode)
    )
    image.save(tmp_path / "x.png")
    out = read_image_rgb(tmp_path / "x.png")
    assert out.shape == (80, 90, 3) and out.dtype == np.float32
    # The values, not only the shape: what each mode means in RGB.
    if mode in ("RGB", "RGBA"):  # alpha dropped, colours kept
        np.testing.assert_array_equal(out, rgb)
    elif mode == "I;16":  # 16-bit scaled down to the 8-bit range, on all channels
        for c in range(3):
            np.testing.assert_allclose(out[..., c], rgb[..., 0], atol=0.01)
    else:  # grey: three equal channels; palette: its colours
        np.testing.assert_array_equal(out, np.asarray(image.convert("RGB"), np.float32))
        if mode == "L":
            assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    def failing(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "out.npy", failing)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupt_removes_what_was_being_written(tmp_path):
    # What the CLI's Ctrl-C handler calls before it exits (it cannot unwind).
    from kerazoo import _io

    seen = {}

    def write(tmp):
        open(tmp, "w").write("half")
        seen["file"] = tmp
        folder = tmp_path / "staging"
        folder.mkdir()
        with _io.tracked_temporary(folder):
            _io.remove_temporaries()  # the interrupt arrives here
        seen["left"] = folder.exists() or os.path.exists(tmp)
        raise KeyboardInterrupt

    try:
        _io.atomic_write(tmp_path / "out.json", write)
    except KeyboardInterrupt:
        pass
    assert not seen["left"] and not os.path.exists(seen["file"])
    assert list(tmp_path.iterdir()) == [] and not _io._TEMPORARIES


@pytest.mark.parametrize("stage", ["create", "write", "rename"])
def test_atomic_write_errors_name_the_path_not_its_temporary(tmp_path, stage, monkeypatch):
    # The CLI prints an OSError as "filename: strerror"; the temporary's
    # name (".out.json.k2x9...") would mean nothing to the user.
    import errno
    import tempfile

    target = tmp_path / "out.json"

    def write(tmp):
        if stage == "write":
            raise OSError(errno.ENOSPC, "No space left on device", tmp)
        open(tmp, "w").write("{}")

    def refuse(*args, **kwargs):
        raise PermissionError(
            errno.EACCES, "Permission denied", str(tmp_path / ".out.json.abc123.json")
        )

    if stage == "create":
        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    elif stage == "rename":
        target.mkdir()  # os.replace cannot put a file over a folder
    expected = {"create": PermissionError, "write": OSError, "rename": IsADirectoryError}[stage]
    with pytest.raises(OSError) as raised:
        atomic_write(target, write)
    assert raised.type is expected
    assert raised.value.filename == str(target) and raised.value.filename2 is None
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_atomic_write_keeps_errors_about_other_files(tmp_path):
    def write(tmp):
        open(tmp_path / "missing" / "input.csv")

    with pytest.raises(FileNotFoundError) as raised:
        atomic_write(tmp_path / "out.json", write)
    assert raised.value.filename == str(tmp_path / "missing" / "input.csv")


def _archive(path, members):
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    "members, message",
    [
        ({"config.json": b" " * (65 << 20)}, "its config.json inflates to 65 MiB, over 64 MiB"),
        ({"model.weights.h5": bytes(17 << 20)}, "model.weights.h5 inflates"),
        ({f"assets/{i}": b"x" for i in range(1001)}, "1001 files in the archive, over 1000"),
    ],
)
def test_a_zip_bomb_is_refused_before_keras_reads_it(tmp_path, members, message):
    from kerazoo._io import load_keras_model

    path = _archive(tmp_path / "bomb.keras", members)
    assert path.stat().st_size < 1 << 20  # small on disk
    with pytest.raises(InputError, match=re.escape(message)):
        load_keras_model(path)


def test_the_archive_total_is_bounded(tmp_path, monkeypatch):
    from kerazoo import _io

    monkeypatch.setattr(_io, "MAX_ARCHIVE_BYTES", 1000)
    path = _archive(
        tmp_path / "big.keras", {"config.json": b"{}", "a": b"1" * 600, "b": b"2" * 600}
    )
    with pytest.raises(InputError, match="the archive inflates to 1202 bytes, over 1000 bytes"):
        _io.load_keras_model(path)


def test_the_model_loader_keeps_safe_mode(tmp_path):
    """A Lambda runs code on load: kerazoo's loader refuses it (Keras's safe
    mode), in one line."""
    import keras

    from kerazoo._io import load_keras_model

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    model.save(tmp_path / "lambda.keras")
    with pytest.raises(InputError, match="safe_mode") as error:
        load_keras_model(tmp_path / "lambda.keras")
    assert "\n" not in str(error.value)


def test_a_crafted_model_says_the_cause_not_only_could_not_be_deserialized(tmp_path):
    """A config naming a layer argument the class does not take: the message
    says which, not Keras's generic wrapper alone."""
    import json
    import zipfile

    import keras

    from kerazoo._io import load_keras_model

    inputs = keras.Input((3,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][-1]["config"]["no_such_argument"] = 1
    members["config.json"] = json.dumps(config).encode()
    _archive(tmp_path / "crafted.keras", members)
    with pytest.raises(InputError, match="no_such_argument"):
        load_keras_model(tmp_path / "crafted.keras")
