"""The price demo (7.100/7.120, three inputs): trains, saves, predicts in a
fresh process; bad rows are reported and skipped; errors are one line."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import BACKEND, cli_json, needs_tf, run_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def price_csv(tmp_path_factory):
    from kerazoo.app.demos.price import synthetic_dataset

    return synthetic_dataset(40, tmp_path_factory.mktemp("price"), seed=3)


@pytest.mark.slow
@needs_tf
def test_price_trains_saves_and_predicts_in_a_fresh_process(price_csv, tmp_path):
    model = tmp_path / "price.keras"
    s = cli_json(
        "demo",
        "price",
        "train",
        "--data",
        price_csv,
        "--epochs",
        2,
        "--weights",
        "none",
        "--out",
        model,
        "--plot",
        tmp_path / "curves.png",
    )
    assert s["rows"] == 40 and s["skipped"] == 0 and s["validation"] == 8
    assert s["validation_mae"] > 0 and s["baseline_mae"] > 0 and model.is_file()
    assert (tmp_path / "curves.png").is_file()
    image = price_csv.parent / "images" / "item_00000.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kerazoo",
            "demo",
            "price",
            "predict",
            str(model),
            "--brand",
            "vela",
            "--age",
            "1.5",
            "--condition",
            "new",
            "--description",
            "elegant silk jacket designer label",
            "--image",
            str(image),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "KERAS_BACKEND": "tensorflow"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["price"] > 0


@needs_tf
def test_price_bad_rows_are_reported_and_skipped(price_csv, tmp_path):
    rows = list(csv.reader(open(price_csv)))
    rows[1][4] = "missing.png"  # line 2
    rows[2][1] = "old"  # line 3
    rows[3][3] = "  "  # line 4
    rows[4][5] = "-3"  # line 5
    bad = tmp_path / "items.csv"
    with open(bad, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    shutil.copytree(price_csv.parent / "images", tmp_path / "images")
    result = run_cli(
        "demo",
        "price",
        "train",
        "--data",
        bad,
        "--epochs",
        1,
        "--weights",
        "none",
        "--out",
        tmp_path / "m.keras",
        "--json",
    )
    assert result.exit_code == 0, result.output
    for message in (
        "line 2: image 'missing.png' not found",
        "line 3: age_years 'old'",
        "line 4: empty description",
        "line 5: price '-3'",
    ):
        assert message in result.stderr
    assert json.loads(result.stdout)["skipped"] == 4


@needs_tf
def test_price_errors_are_one_line_and_write_no_model(price_csv, tmp_path):
    only_bad = tmp_path / "bad.csv"
    only_bad.write_text(
        "brand,age_years,condition,description,image,price\nacme,x,new,shirt,a.png,3\n"
    )
    not_csv = tmp_path / "cols.csv"
    not_csv.write_text("a,b\n1,2\n")
    cases = [
        (["train", "--data", only_bad], "no usable row"),
        (["train", "--data", not_csv], "missing column(s) brand"),
        (["train", "--data", tmp_path / "nope.csv"], "nope.csv: no such file"),
        (["train"], "give either --data ITEMS.csv or --synthetic N"),
        (
            [
                "predict",
                tmp_path / "none.keras",
                "--brand",
                "a",
                "--age",
                1,
                "--condition",
                "new",
                "--description",
                "x",
                "--image",
                price_csv.parent / "images" / "item_00000.png",
            ],
            "none.keras: no such model file",
        ),
        (
            [
                "predict",
                not_csv,
                "--brand",
                "a",
                "--age",
                1,
                "--condition",
                "new",
                "--description",
                "x",
                "--image",
                price_csv.parent / "images" / "item_00000.png",
            ],
            "not a .keras model (not a zip archive",
        ),
    ]
    for args, message in cases:
        out = tmp_path / "m.keras"
        result = run_cli("demo", "price", *args, *(["--out", out] if args[0] == "train" else []))
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and result.stderr.count("kerazoo: error:") == 1
        assert not out.exists()


@pytest.mark.skipif(BACKEND == "tensorflow", reason="non-TF backends only")
def test_price_on_other_backends_says_why(price_csv, tmp_path):
    result = run_cli("demo", "price", "train", "--data", price_csv, "--out", tmp_path / "m.keras")
    assert result.exit_code == 2 and "TensorFlow only" in result.stderr


@needs_tf
def test_synthetic_data_and_a_separate_images_folder(tmp_path):
    s = cli_json(
        "demo",
        "price",
        "train",
        "--synthetic",
        12,
        "--synthetic-dir",
        tmp_path / "gen",
        "--epochs",
        1,
        "--weights",
        "none",
        "--out",
        tmp_path / "m.keras",
    )
    assert s["rows"] == 12 and (tmp_path / "gen" / "items.csv").is_file()
    assert len(list((tmp_path / "gen" / "images").iterdir())) == 12
    # The CSV in one folder, its images in another, named with --images.
    (tmp_path / "csv").mkdir()
    shutil.move(tmp_path / "gen" / "items.csv", tmp_path / "csv" / "items.csv")
    s = cli_json(
        "demo",
        "price",
        "train",
        "--data",
        tmp_path / "csv" / "items.csv",
        "--images",
        tmp_path / "gen" / "images",
        "--epochs",
        1,
        "--weights",
        "none",
        "--out",
        tmp_path / "m2.keras",
    )
    assert s["rows"] == 12 and s["skipped"] == 0


@pytest.mark.slow
@needs_tf
def test_the_shipped_items_beat_the_median_and_each_input_helps(tmp_path):
    """The README's price row, as its command gives it on the 150 shipped
    items: below the median-price baseline, and worse without any one input."""
    s = cli_json(
        "demo",
        "price",
        "train",
        "--data",
        ROOT / "demos/data/price/items.csv",
        "--weights",
        "none",
        "--epochs",
        8,
        "--ablation",
        "--out",
        tmp_path / "m.keras",
    )
    assert s["validation_mae"] < 0.8 * s["baseline_mae"], s
    for dropped, mae in s["validation_mae_without"].items():
        assert mae > s["validation_mae"], (dropped, s)


def test_csv_numbers_out_of_range_and_twice_named_columns(price_csv, tmp_path):
    """An age of 1e308 is inf in float32: the row is refused with its line,
    not trained on; a header naming `price` twice is refused, not read as
    whichever came last; one row too big for the CSV reader is that row's
    problem only."""
    from kerazoo.app.demos.price import read_items
    from kerazoo.errors import InputError

    rows = list(csv.reader(open(price_csv)))
    rows[1][1] = "1e308"  # line 2
    rows[2][5] = "inf"  # line 3
    rows[3][3] = "x" * 200_000  # line 4: over the csv module's field limit
    path = tmp_path / "items.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    shutil.copytree(price_csv.parent / "images", tmp_path / "images")
    items, problems = read_items(path)
    assert problems[:3] == [
        "line 2: age_years '1e308' is not a number from 0 to 200",
        "line 3: price 'inf' is not a number from 0 to 1e+09",
        "line 4: field larger than field limit (131072)",
    ]
    assert len(items["price"]) == len(rows) - 4 and np.isfinite(items["age_years"]).all()
    twice = tmp_path / "twice.csv"
    twice.write_text(
        "brand,age_years,condition,description,image,price,price\n"
        "acme,1,new,shirt,item_00000.png,3,4\n"
    )
    with pytest.raises(InputError, match="line 1: column.s. price appear more than once"):
        read_items(twice, tmp_path / "images")


def test_images_may_be_links_but_names_may_not_leave_the_folder(price_csv, tmp_path):
    """A folder of per-file links (git-annex, DVC) reads as the files; a
    name that climbs out of the folder is refused, link or not."""
    from kerazoo.app.demos.price import read_items

    store, images = tmp_path / "annex", tmp_path / "images"
    store.mkdir()
    images.mkdir()
    for source in (price_csv.parent / "images").iterdir():
        shutil.copy(source, store / source.name)
        (images / source.name).symlink_to(store / source.name)
    rows = list(csv.reader(open(price_csv)))
    rows[1][4] = "../annex/" + rows[1][4]  # line 2
    with open(tmp_path / "items.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    items, problems = read_items(tmp_path / "items.csv")
    assert len(items["price"]) == len(rows) - 2
    assert problems == [f"line 2: image {rows[1][4]!r} is outside {images}"]


def test_a_csv_too_large_to_hold_is_refused_before_any_photo_is_decoded(
    price_csv, tmp_path, monkeypatch
):
    from kerazoo.app.demos import price
    from kerazoo.errors import InputError

    monkeypatch.setattr(price, "MAX_ROWS", 3)
    monkeypatch.setattr(price, "load_photo", lambda path: 1 / 0)  # never reached
    with pytest.raises(InputError, match="rows, over the 3 this demo trains on in memory"):
        price.read_items(price_csv)
    monkeypatch.undo()
    items, _ = price.read_items(price_csv)
    assert items["image"].dtype == np.uint8  # a quarter of float32's memory
