"""What kerazoo promises under careless and hostile use (README, "What kerazoo
promises"): bad input and unwritable places give one line and exit code 2
before any long work; outputs are one set; user files are never touched;
memory stays bounded; Ctrl-C is exit 130."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from kerazoo.app.demos.stereo_data import synthetic_pair

from conftest import BACKEND, assert_one_line_error, needs_tf, run_cli, write_pair


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("pair")
    write_pair(root, height=80, width=112, seed=4, max_disparity=16)
    return root / "left.png", root / "right.png"


def _stereo(pair, *args):
    return run_cli("demo", "stereo", *pair, "--max-disparity", 16, *args)


def _file(path):
    path.write_text("x")
    return path


@pytest.mark.parametrize(
    "make_out,message",
    [
        (lambda t: _file(t / "file") / "out", "is a file, not a folder"),
        (lambda t: _file(t / "plain"), "exists and is not a folder"),
        (lambda t: "/proc/kerazoo-out", "cannot write in /proc"),
        (lambda t: "/proc", "/proc is a mount point: give a folder inside it"),
    ],
)
def test_unwritable_out_fails_first_in_one_line(pair, tmp_path, make_out, message):
    start = time.perf_counter()
    result = _stereo(pair, "--out", make_out(tmp_path))
    assert_one_line_error(result, message)
    assert "--out: " in result.stderr and "features" not in result.stderr  # before the work
    assert time.perf_counter() - start < 30


def test_unwritable_save_model_and_plot_fail_first(pair, tmp_path):
    (tmp_path / "f").write_text("x")
    assert_one_line_error(
        _stereo(pair, "--out", tmp_path / "o", "--save-model", tmp_path / "f" / "m.keras"),
        "--save-model: ",
    )
    assert not (tmp_path / "o").exists()
    assert_one_line_error(
        run_cli("demo", "adder", "--retrain", "--plot", tmp_path / "f" / "c.png"), "--plot: "
    )
    assert_one_line_error(
        run_cli("demo", "adder", "--plot", tmp_path / "c.png"),
        "--plot: draws the training curves: it needs --retrain",
    )


def test_outputs_are_one_set_and_user_files_are_kept(pair, tmp_path):
    out = tmp_path / "out"
    first = _stereo(pair, "--out", out, "--json")
    second = _stereo(pair, "--out", out, "--weights", "none", "--json")
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    assert sorted(p.name for p in out.iterdir()) == [
        "disparity.npy",
        "disparity.png",
        "summary.json",
    ]
    assert json.loads((out / "summary.json").read_text())["weights"] == "random"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")] == []
    # A folder holding something else is not ours to replace.
    (out / "notes.txt").write_text("mine")
    refused = _stereo(pair, "--out", out)
    assert_one_line_error(refused, "holds other files (notes.txt)")
    assert "features" not in refused.stderr  # before the work, not after it
    assert (out / "notes.txt").read_text() == "mine"


def test_a_second_writer_is_refused_and_a_killed_run_is_cleaned(pair, tmp_path):
    out = tmp_path / "out"
    lock = os.open(tmp_path / ".out.lock", os.O_CREAT | os.O_RDWR)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        assert_one_line_error(_stereo(pair, "--out", out), "another kerazoo run is writing")
    finally:
        os.close(lock)
    # Leftovers of a run killed mid-write, and one killed between its renames.
    (tmp_path / ".out.new-abc").mkdir()
    (tmp_path / ".out.new-abc" / "disparity.npy").write_text("half")
    (tmp_path / ".out.old-def").mkdir()
    (tmp_path / ".out.old-def" / "summary.json").write_text("{}")
    result = _stereo(pair, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / ".out.new-abc").exists() and not (tmp_path / ".out.old-def").exists()
    assert json.loads((out / "summary.json").read_text())["max_disparity"] == 16


def test_a_decompression_bomb_and_a_huge_image_are_refused(tmp_path):
    # 160 megapixels, over kerazoo's 150 MP limit, in a few kilobytes.
    Image.new("1", (16_000, 10_000)).save(tmp_path / "huge.png")
    result = run_cli(
        "demo", "stereo", tmp_path / "huge.png", tmp_path / "huge.png", "--out", tmp_path / "o"
    )
    assert_one_line_error(result, "is 160 megapixels, over the 150 MP kerazoo reads")
    # 400 megapixels: a decompression bomb by Pillow's own check too.
    Image.new("1", (20_000, 20_000)).save(tmp_path / "bomb.png")
    result = run_cli(
        "demo", "stereo", tmp_path / "bomb.png", tmp_path / "bomb.png", "--out", tmp_path / "o"
    )
    assert_one_line_error(result, "refused as a decompression bomb")


@pytest.mark.slow
def test_large_pairs_keep_memory_bounded(tmp_path):
    """A 24 MP pair: matched at 1 MP, and the process stays under 3 GB."""
    big = synthetic_pair(height=400, width=600, seed=8, max_disparity=40)
    for name, view in (("l.png", big.left), ("r.png", big.right)):
        Image.fromarray(view).resize((6000, 4000)).save(tmp_path / name)
    code = (
        "import resource, sys\nfrom kerazoo.app.cli import main\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(code)"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "demo",
            "stereo",
            str(tmp_path / "l.png"),
            str(tmp_path / "r.png"),
            "--max-disparity",
            "400",
            "--out",
            str(tmp_path / "o"),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    peak_mb = int(result.stderr.split("PEAK")[-1].split()[0]) / 1024
    summary = json.loads(result.stdout)
    assert (
        summary["downscaled"] and summary["output_size"][0] * summary["output_size"][1] <= 1_000_000
    )
    assert np.load(tmp_path / "o" / "disparity.npy").nbytes <= 4_000_000
    assert peak_mb < 3000, peak_mb


@pytest.mark.slow
def test_ctrl_c_is_exit_130_in_one_line():
    process = subprocess.Popen(
        [sys.executable, "-m", "kerazoo", "demo", "adder", "--retrain", "--epochs", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Interrupt once training runs (not during start-up, whose length depends
    # on the machine's load).
    for line in process.stdout:
        if line.startswith("Epoch 2/"):
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    assert stderr.rstrip().splitlines()[-1] == "kerazoo: interrupted"
    assert "Traceback" not in stderr and "Aborted" not in stderr


def test_weights_files_that_are_not_what_they_seem(pair, tmp_path):
    with h5py.File(tmp_path / "scalar.h5", "w") as f:
        f.attrs["layer_names"] = "not a list"
    assert_one_line_error(
        run_cli("weights", "verify", tmp_path / "scalar.h5"),
        "not in the keras-applications weights layout",
    )
    assert_one_line_error(run_cli("weights", "verify", tmp_path), "is a folder")
    import keras

    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save_weights(
        tmp_path / "foreign.weights.h5"
    )
    result = _stereo(pair, "--out", tmp_path / "o", "--weights", tmp_path / "foreign.weights.h5")
    assert_one_line_error(result, "does not fit the stereo stem")
    assert result.stderr.count("\n") <= 3 and "Traceback" not in result.stderr


# ------------------------------------------------------------------ price


@pytest.fixture(scope="module")
def price_model(tmp_path_factory):
    if BACKEND != "tensorflow":
        pytest.skip("the price model is TensorFlow-only")
    from kerazoo.app.demos.price import synthetic_dataset

    root = tmp_path_factory.mktemp("price")
    csv_path = synthetic_dataset(30, root, seed=1)
    result = run_cli(
        "demo",
        "price",
        "train",
        "--data",
        csv_path,
        "--epochs",
        1,
        "--weights",
        "none",
        "--out",
        root / "m.keras",
        "--json",
    )
    assert result.exit_code == 0, result.output
    return root


def _predict(model, root, *extra, brand="vela", condition="new", age=1.5):
    return run_cli(
        "demo",
        "price",
        "predict",
        model,
        "--brand",
        brand,
        "--age",
        age,
        "--condition",
        condition,
        "--description",
        "silk jacket",
        "--image",
        root / "images" / "item_00000.png",
        *extra,
    )


@needs_tf
def test_price_predict_refuses_what_is_not_its_model(price_model, tmp_path):
    import keras

    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    other.save(tmp_path / "other.keras")
    assert_one_line_error(
        _predict(tmp_path / "other.keras", price_model),
        "not a price model from `kerazoo demo price train`",
    )
    data = (price_model / "m.keras").read_bytes()
    (tmp_path / "cut.keras").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.keras").write_bytes(b"")
    for name in ("cut.keras", "empty.keras"):
        assert_one_line_error(_predict(tmp_path / name, price_model), "not a .keras model")


@needs_tf
def test_price_is_never_negative_and_unknown_values_are_said(price_model):
    for age in (0, 30, 200):
        result = _predict(price_model / "m.keras", price_model, "--json", age=age)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["price"] >= 0
    result = _predict(price_model / "m.keras", price_model, "--json", brand="nobody")
    assert result.exit_code == 0
    assert "unknown brand 'nobody'" in result.stderr
    assert json.loads(result.stdout)["warnings"][0].startswith("unknown brand")


@needs_tf
def test_price_csv_with_a_bom_and_paths_out_of_the_images_folder(price_model, tmp_path):
    import csv

    rows = list(csv.reader(open(price_model / "items.csv")))
    rows[1][4] = "../../../etc/hostname"
    rows[2][4] = str(price_model / "items.csv")  # absolute, and outside the images
    with open(tmp_path / "items.csv", "w", newline="", encoding="utf-8-sig") as f:
        csv.writer(f).writerows(rows)
    result = run_cli(
        "demo",
        "price",
        "train",
        "--data",
        tmp_path / "items.csv",
        "--images",
        price_model / "images",
        "--epochs",
        1,
        "--weights",
        "none",
        "--out",
        tmp_path / "m.keras",
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert "line 2: image '../../../etc/hostname' is outside" in result.stderr
    assert "line 3: image" in result.stderr and "is outside" in result.stderr
    assert json.loads(result.stdout)["skipped"] == 2


def test_a_rerun_keeps_the_folders_mode_and_a_linked_out_stays_a_link(pair, tmp_path):
    out = tmp_path / "private"
    assert _stereo(pair, "--out", out).exit_code == 0
    os.chmod(out, 0o700)
    assert _stereo(pair, "--out", out).exit_code == 0
    assert out.stat().st_mode & 0o777 == 0o700
    # A --out that is a link: the results go where it leads, the link stays.
    target = tmp_path / "real"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    assert _stereo(pair, "--out", tmp_path / "link").exit_code == 0
    assert (tmp_path / "link").is_symlink() and (target / "summary.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "private", "real"]


@pytest.mark.parametrize("kind", ["fifo", "device", "loop", "broken"])
def test_what_is_not_a_file_is_named_for_what_it_is(pair, tmp_path, kind):
    path = tmp_path / "view.png"
    message = {
        "fifo": "not a regular file (a device, pipe or socket)",
        "device": "not a regular file (a device, pipe or socket)",
        "loop": "view.png: ",
        "broken": "a broken or looping link",
    }[kind]
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/zero")
    elif kind == "loop":
        path.symlink_to(path)
    else:
        path.symlink_to(tmp_path / "gone.png")
    result = run_cli("demo", "stereo", path, pair[1], "--out", tmp_path / "o")
    assert_one_line_error(result, message)
    assert "no such file" not in result.stderr


def test_a_full_disk_names_the_file_being_written(tmp_path):
    import errno

    from kerazoo._io import atomic_write

    def full(tmp):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError) as raised:
        atomic_write(tmp_path / "summary.json", full)
    assert raised.value.filename == str(tmp_path / "summary.json")
    assert list(tmp_path.iterdir()) == []


def test_a_killed_exports_staging_folder_is_removed_by_the_next(tmp_path):
    from kerazoo import export

    stale = tmp_path / ".m.onnx.k2x9"
    stale.mkdir()
    (stale / "m.onnx").write_bytes(b"half")
    mine = tmp_path / ".m.onnx.notes"  # a file of that shape is not a staging folder
    mine.write_text("keep")
    export._remove_stale_staging(tmp_path / "m.onnx")
    assert not stale.exists() and mine.read_text() == "keep"


def test_results_of_a_run_killed_mid_swap_come_back_even_if_the_next_run_fails(pair, tmp_path):
    hidden = tmp_path / ".out.old-abc"
    hidden.mkdir()
    (hidden / "summary.json").write_text('{"earlier": true}')
    result = _stereo(pair, "--out", tmp_path / "out", "--max-disparity", 1)  # refused
    assert_one_line_error(result, "--max-disparity: must be at least 4")
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == {"earlier": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.slow
def test_ctrl_c_while_keras_is_imported_is_one_line():
    """The line reaches the user although stderr is sent to a log while
    TensorFlow starts (its C++ start-up noise)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kerazoo", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KERAS_BACKEND": "tensorflow"},
    )
    time.sleep(1.5)  # kerazoo's own modules are in; Keras and TensorFlow take seconds
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    if process.returncode == 0:
        pytest.skip("the import finished before the interrupt on this machine")
    assert process.returncode == 130, stderr[-2000:]
    assert stderr.rstrip().splitlines()[-1] == "kerazoo: interrupted"
    assert "Traceback" not in stderr
