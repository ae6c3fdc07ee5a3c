"""The chapter's demos: shipped weights answer at once and beat their
baselines; --retrain trains; the table-driven runner returns the model."""

import numpy as np
import pytest
from PIL import Image

import kerazoo
from kerazoo.app.demos import chapter as demos_chapter
from kerazoo.app.models import chapter

from _h5 import write_keras_applications_h5
from conftest import assert_one_line_error, cli_json, run_cli


def test_builders_match_the_chapter():
    # The chapter's own summary: Total params 3,169.
    assert chapter.adder().count_params() == 3169
    qa = chapter.question_answering(1000, 100, 50)
    assert [tuple(i.shape) for i in qa.inputs] == [(None, None), (None, None)]
    assert qa.output_shape == (None, 50)
    posts = chapter.posts(500, 10)
    assert {k: tuple(v.shape) for k, v in posts.output.items()} == {
        "age": (None, 1),
        "income": (None, 10),
        "gender": (None, 1),
    }
    assert chapter.sequence_similarity(features=128).output_shape == (None, 1)


@pytest.mark.parametrize(
    "name,check",
    [
        ("adder", lambda s: s["test_mae"] < 0.5 * s["baseline_mae"]),
        # The answer needs both inputs: far above the best rule blind to either,
        # and back near the question-blind level when the questions are shuffled.
        (
            "qa",
            lambda s: (
                s["test_accuracy"] > s["question_blind_accuracy"] + 0.5
                and s["test_accuracy"] > s["text_blind_accuracy"] + 0.5
                and s["shuffled_questions_accuracy"] < s["question_blind_accuracy"] + 0.1
            ),
        ),
        (
            "posts",
            lambda s: (
                s["age_mae"] < 0.5 * s["age_baseline_mae"]
                and s["income_accuracy"] > 0.9
                and s["gender_accuracy"] > 0.9
            ),
        ),
        # Beats a threshold on the raw-pixel distance (no learning), and is symmetric.
        (
            "similarity",
            lambda s: (
                s["test_accuracy"] > s["pixel_l1_accuracy"] + 0.03 and s["order_agreement"] == 1.0
            ),
        ),
    ],
)
def test_shipped_weights_answer_at_once_and_beat_the_baseline(name, check):
    summary = cli_json("demo", name)
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
    summary = cli_json("demo", "adder", "--retrain", "--epochs", 2, "--plot", tmp_path / "c.png")
    assert summary["weights"] == "trained now" and "loss" in summary["history"]
    with Image.open(tmp_path / "c.png") as image:
        assert image.size == (640, 360)


def test_posts_without_loss_weights_trains_anew():
    summary = cli_json("demo", "posts", "--loss-weights", "age=1,income=1,gender=1", "--epochs", 1)
    assert summary["weights"] == "trained now"
    assert summary["loss_weights"] == {"age": 1.0, "income": 1.0, "gender": 1.0}


@pytest.mark.parametrize(
    "value,message",
    [
        ("age=x", "'x' is not a number"),
        ("height=1", "with NAME in age, income, gender"),
        ("age", "expected NAME=NUMBER"),
        ("age=-1", "non-negative"),
    ],
)
def test_bad_loss_weights(value, message):
    assert_one_line_error(run_cli("demo", "posts", "--loss-weights", value), message)


def test_inception_and_residual_report_counts():
    s = cli_json("demo", "inception", "--weights", "none")
    assert s["inception_v3"]["total"] == 23_851_784
    assert s["chapter_block_params"] == (3 * 128 + 128) + (3 * 128 + 128) + (
        128 * 9 * 128 + 128
    ) + (3 * 9 * 128 + 128) + (3 * 128 + 128) + 2 * (128 * 9 * 128 + 128)
    r = cli_json("demo", "residual")
    assert r["xception"]["total"] == 20_861_480 and r["xception_residual_connections"] == 12


def test_demo_help_says_what_each_shows():
    result = run_cli("demo", "--help")
    for name in ("adder", "qa", "posts", "similarity", "inception", "residual", "price", "stereo"):
        assert name in result.output
    assert "7.150" in run_cli("demo", "similarity", "--help").output


def test_qa_baselines_are_what_they_claim():
    # The question-blind rule answers a value of the text: right 1 time in
    # 4 topics; the text-blind rule the usual value of a topic: 1 in 6.
    (text, question), answer = demos_chapter.qa_data(20_000, 5)
    rules = demos_chapter.qa_baselines(text, question, answer)
    assert rules["question_blind_accuracy"] == pytest.approx(0.25, abs=0.02)
    assert rules["text_blind_accuracy"] == pytest.approx(1 / 6, abs=0.03)
    # And the answer is always in the text.
    assert all(a + demos_chapter.QA_FILLER_WORDS + 1 in t for t, a in zip(text, answer))


def test_pixel_baseline_is_a_real_rule():
    (a, b), y = demos_chapter.digit_pairs(2_000, 0, "train")
    (ta, tb), ty = demos_chapter.digit_pairs(2_000, 1, "test")
    accuracy = demos_chapter.pixel_l1_baseline((a, b), y, (ta, tb), ty)
    assert 0.7 < accuracy < 0.9  # far above chance, far from perfect


def test_the_runner_returns_the_trained_model():
    summary, model = demos_chapter.run("adder", retrain=True, epochs=1, samples=2_000, quiet=True)
    assert summary["weights"] == "trained now" and model.count_params() == summary["params"]
    assert model.optimizer is not None  # trained here, not loaded
    with pytest.raises(ValueError, match="`merge` is not an option of the adder demo"):
        demos_chapter.run("adder", merge="concat")


@pytest.fixture(scope="module")
def inception_top(generated, tmp_path_factory):
    """InceptionV3 with its classifier, in the keras-applications layout, and
    a manifest that knows its hash (the real file cannot be downloaded here)."""
    import json

    import keras

    from kerazoo import weights as W

    root = tmp_path_factory.mktemp("inception_top")
    files = json.loads(generated["manifest"].read_text())["files"]
    keras.utils.set_random_seed(2)
    model = keras.applications.InceptionV3(weights=None)
    path = write_keras_applications_h5(model, root / files["inception_v3"]["file"])
    files["inception_v3"]["hash"] = W.file_hash(path, "md5")
    (root / files["imagenet_class_index"]["file"]).write_bytes(
        (generated["root"] / files["imagenet_class_index"]["file"]).read_bytes()
    )
    (root / "manifest.json").write_text(json.dumps({"files": files}))
    return root, model


def test_inception_image_prints_the_top_5(inception_top, tmp_path, monkeypatch):
    import numpy as np

    root, model = inception_top
    monkeypatch.setenv("KERAZOO_MANIFEST", str(root / "manifest.json"))
    monkeypatch.setenv("KERAZOO_WEIGHTS", str(root))
    pixels = np.random.default_rng(0).integers(0, 255, (299, 299, 3), np.uint8)
    Image.fromarray(pixels).save(tmp_path / "photo.png")
    s = cli_json("demo", "inception", "--image", tmp_path / "photo.png", "--weights", "imagenet")
    scores = model.predict(pixels[None].astype("float32") / 127.5 - 1, verbose=0)[0]
    best = np.argsort(scores)[::-1][:5]
    assert [t["label"] for t in s["top5"]] == [f"class_{i}" for i in best]
    np.testing.assert_allclose([t["score"] for t in s["top5"]], scores[best], atol=1e-3)


def test_the_pixel_baseline_chooses_its_threshold_on_the_training_pairs_only():
    """Train pairs say "same below 10"; test pairs would say "same below 100".
    Fitted on the training pairs, the test accuracy is 0.5; a threshold
    fitted on the test pairs (a leak) would score 1.0."""
    from kerazoo.app.demos.chapter import pixel_l1_baseline

    def pairs(same_distance, other_distance, n=40):
        a = np.zeros((n, 4), "float32")
        b = a.copy()
        b[: n // 2, 0] = same_distance  # the "same" pairs
        b[n // 2 :, 0] = other_distance
        labels = np.r_[np.ones(n // 2), np.zeros(n // 2)][:, None]
        return (a, b), labels

    train, train_labels = pairs(5.0, 20.0)
    test, test_labels = pairs(50.0, 200.0)
    assert pixel_l1_baseline(train, train_labels, test, test_labels) == 0.5
    assert pixel_l1_baseline(test, test_labels, test, test_labels) == 1.0


def test_similarity_without_scikit_learn_names_the_extra(monkeypatch):
    import sys

    from kerazoo.app.demos import chapter
    from kerazoo.errors import InputError

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails
    with pytest.raises(InputError, match=r"pip install 'kerazoo\[demos\]'"):
        chapter.digit_pairs(4, 0, "train")
