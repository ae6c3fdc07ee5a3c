"""The chapter's demos: shipped weights answer at once and beat their
baselines; --retrain trains; the price model trains, saves and predicts in a
fresh process; bad input is one line and exit 2."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from click.testing import CliRunner
from PIL import Image

import kerazoo
import kerazoo_cli
from kerazoo.models import chapter

ROOT = Path(__file__).resolve().parents[1]
needs_tf = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                              reason="string preprocessing inside the model is TF-only")


def _cli(*args):
    result = CliRunner().invoke(kerazoo_cli.cli, [str(a) for a in args])
    return result


def _json(*args):
    result = _cli(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_builders_match_the_chapter():
    # The chapter's own summary: Total params 3,169.
    assert chapter.adder().count_params() == 3169
    qa = chapter.question_answering(1000, 100, 50)
    assert [tuple(i.shape) for i in qa.inputs] == [(None, None), (None, None)]
    assert qa.output_shape == (None, 50)
    posts = chapter.posts(500, 10)
    assert {k: tuple(v.shape) for k, v in posts.output.items()} == {
        "age": (None, 1), "income": (None, 10), "gender": (None, 1)}
    assert chapter.sequence_similarity(features=128).output_shape == (None, 1)


@pytest.mark.parametrize("name,check", [
    ("adder", lambda s: s["test_mae"] < 0.5 * s["baseline_mae"]),
    ("qa", lambda s: s["test_accuracy"] > 2 * s["baseline_accuracy"]),
    ("posts", lambda s: s["age_mae"] < 0.5 * s["age_baseline_mae"]
     and s["income_accuracy"] > 0.9 and s["gender_accuracy"] > 0.9),
    ("similarity", lambda s: s["test_accuracy"] > 0.75 and s["order_agreement"] == 1.0),
])
def test_shipped_weights_answer_at_once_and_beat_the_baseline(name, check):
    summary = _json("demo", name)
    assert summary["weights"].endswith(f"demo_{name}.weights.h5")
    assert check(summary), summary


def test_shipped_weights_are_in_the_manifest_with_sha256():
    files = kerazoo.weights.load_manifest()
    for name in ("adder", "qa", "posts", "similarity"):
        info = files[f"demo_{name}"]
        assert info["hash_algorithm"] == "sha256"
        path = kerazoo.weights.resolve(f"demo_{name}", download=False)
        assert kerazoo.weights.verify(path, f"demo_{name}")["verified"]


def test_retrain_with_plot(tmp_path):
    summary = _json("demo", "adder", "--retrain", "--epochs", 2, "--plot", tmp_path / "c.png")
    assert summary["weights"] == "trained now" and "loss" in summary["history"]
    with Image.open(tmp_path / "c.png") as image:
        assert image.size == (640, 360)


def test_posts_without_loss_weights_trains_anew():
    summary = _json("demo", "posts", "--loss-weights", "age=1,income=1,gender=1",
                    "--epochs", 1)
    assert summary["weights"] == "trained now"
    assert summary["loss_weights"] == {"age": 1.0, "income": 1.0, "gender": 1.0}


@pytest.mark.parametrize("value,message", [
    ("age=x", "'x' is not a number"), ("height=1", "with NAME in age, income, gender"),
    ("age", "expected NAME=NUMBER"), ("age=-1", "non-negative")])
def test_bad_loss_weights(value, message):
    result = _cli("demo", "posts", "--loss-weights", value)
    assert result.exit_code == 2 and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_inception_and_residual_report_counts():
    s = _json("demo", "inception", "--weights", "none")
    assert s["inception_v3"]["total"] == 23_851_784
    assert s["chapter_block_params"] == (3 * 128 + 128) + (3 * 128 + 128) + (128 * 9 * 128 + 128) \
        + (3 * 9 * 128 + 128) + (3 * 128 + 128) + 2 * (128 * 9 * 128 + 128)
    r = _json("demo", "residual")
    assert r["xception"]["total"] == 20_861_480 and r["xception_residual_connections"] == 12


def test_demo_help_says_what_each_shows():
    result = _cli("demo", "--help")
    for name in ("adder", "qa", "posts", "similarity", "inception", "residual", "price",
                 "stereo"):
        assert name in result.output
    assert "7.150" in _cli("demo", "similarity", "--help").output


# ------------------------------------------------------------------ price

@pytest.fixture(scope="module")
def price_csv(tmp_path_factory):
    from kerazoo.demos.price import synthetic_dataset

    return synthetic_dataset(40, tmp_path_factory.mktemp("price"), seed=3)


@needs_tf
def test_price_trains_saves_and_predicts_in_a_fresh_process(price_csv, tmp_path):
    model = tmp_path / "price.keras"
    s = _json("demo", "price", "train", "--data", price_csv, "--epochs", 2, "--weights", "none",
              "--out", model, "--plot", tmp_path / "curves.png")
    assert s["rows"] == 40 and s["skipped"] == 0 and s["validation"] == 8
    assert s["validation_mae"] > 0 and s["baseline_mae"] > 0 and model.is_file()
    assert (tmp_path / "curves.png").is_file()
    image = price_csv.parent / "images" / "item_00000.png"
    result = subprocess.run(
        [sys.executable, "-c", "import kerazoo_cli; kerazoo_cli.main()", "demo", "price",
         "predict", str(model), "--brand", "vela", "--age", "1.5", "--condition", "new",
         "--description", "elegant silk jacket designer label", "--image", str(image), "--json"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "KERAS_BACKEND": "tensorflow"})
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
    result = _cli("demo", "price", "train", "--data", bad, "--epochs", 1, "--weights", "none",
                  "--out", tmp_path / "m.keras", "--json")
    assert result.exit_code == 0, result.output
    for message in ("line 2: image 'missing.png' not found", "line 3: age_years 'old'",
                    "line 4: empty description", "line 5: price '-3'"):
        assert message in result.stderr
    assert json.loads(result.stdout)["skipped"] == 4


@needs_tf
def test_price_errors_are_one_line_and_write_no_model(price_csv, tmp_path):
    only_bad = tmp_path / "bad.csv"
    only_bad.write_text("brand,age_years,condition,description,image,price\n"
                        "acme,x,new,shirt,a.png,3\n")
    not_csv = tmp_path / "cols.csv"
    not_csv.write_text("a,b\n1,2\n")
    cases = [
        (["train", "--data", only_bad], "no usable row"),
        (["train", "--data", not_csv], "missing column(s) brand"),
        (["train", "--data", tmp_path / "nope.csv"], "nope.csv: no such file"),
        (["train"], "give either --data ITEMS.csv or --synthetic N"),
        (["predict", tmp_path / "none.keras", "--brand", "a", "--age", 1, "--condition", "new",
          "--description", "x", "--image", price_csv.parent / "images" / "item_00000.png"],
         "none.keras: no such model file"),
        (["predict", not_csv, "--brand", "a", "--age", 1, "--condition", "new",
          "--description", "x", "--image", price_csv.parent / "images" / "item_00000.png"],
         "not a loadable .keras model"),
    ]
    for args, message in cases:
        out = tmp_path / "m.keras"
        result = _cli("demo", "price", *args, *(["--out", out] if args[0] == "train" else []))
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and result.stderr.count("kerazoo: error:") == 1
        assert not out.exists()


@pytest.mark.skipif(keras.backend.backend() == "tensorflow", reason="non-TF backends only")
def test_price_on_other_backends_says_why(price_csv, tmp_path):
    result = _cli("demo", "price", "train", "--data", price_csv, "--out", tmp_path / "m.keras")
    assert result.exit_code == 2 and "TensorFlow only" in result.stderr
