"""The chapter's small demos: adder (7.110), qa (7.120), posts (7.130),
inception / residual (7.140), similarity (7.150).

Each `run_*` returns a summary dict of the numbers the chapter compares:
the model's score next to a common-sense baseline. The trainable ones load
the weights shipped in `weights/` (trained by `demos/train_pretrained.py`,
sha256 in the manifest) and answer at once; `retrain=True` trains anew.
"""

from __future__ import annotations

import numpy as np

from kerazoo import distribute
from kerazoo.demos.common import (choose_weights, fit, load_pretrained, parse_loss_weights,
                                  plot_history, rng)
from kerazoo.registry import register

TEST_SEED = 10_000  # held-out data: never the training seed


def _finish(summary, history, plot, title):
    if history is not None:
        summary["history"] = {k: v[-1] for k, v in history.items()}
        if plot:
            summary["plot"] = str(plot_history(history, plot, title))
    return summary


def _train_or_load(model, name, retrain, train):
    """Returns (history or None, where the weights came from). `train`
    compiles: the shipped files hold weights only, loaded uncompiled."""
    if retrain:
        return train(), "trained now"
    return None, str(load_pretrained(model, name))


# ------------------------------------------------------------------ adder

def adder_data(n, seed):
    x = rng(seed).random((n, 64)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


@register("demo", section="7.110", name="adder")
def run_adder(retrain=False, epochs=30, samples=50_000, plot=None, quiet=False, seed=0,
              strategy=None):
    """The 64-input adder: test MAE against the chapter's 1.86 baseline."""
    import keras

    from kerazoo.models import chapter

    with distribute.scope(strategy) as dist:
        keras.utils.set_random_seed(seed)
        model = chapter.adder()
        def train():
            model.compile(optimizer="rmsprop", loss="mse", metrics=["mae"])
            x, y = adder_data(samples, seed)
            return fit(model, x, y, epochs, 128 * distribute.replicas(dist), quiet)

        history, source = _train_or_load(model, "demo_adder", retrain, train)
    x_test, y_test = adder_data(10_000, TEST_SEED)
    mae = float(np.abs(model.predict(x_test, verbose=0, batch_size=1024) - y_test).mean())
    # The chapter's common sense: 64 uniform numbers sum to about 32.
    baseline = float(np.abs(y_test - 32).mean())
    return _finish({"demo": "adder", "weights": source, "test_mae": round(mae, 4),
                    "baseline_mae": round(baseline, 4), "params": model.count_params()},
                   history, plot, "adder: training")


# --------------------------------------------------------------------- qa

QA_KEYS, QA_VALUES, QA_PAIRS = 10, 10, 3


def qa_data(n, seed):
    """Texts of key-value token pairs; the question names a key; the answer
    is its value. Keys are tokens 1..10, values 11..20; question 'what KEY'."""
    r = rng(seed)
    keys = np.stack([r.permutation(QA_KEYS)[:QA_PAIRS] for _ in range(n)]) + 1
    values = r.integers(0, QA_VALUES, (n, QA_PAIRS))
    text = np.empty((n, 2 * QA_PAIRS), "int32")
    text[:, 0::2], text[:, 1::2] = keys, values + QA_KEYS + 1
    pick = r.integers(0, QA_PAIRS, n)
    question = np.stack([np.full(n, QA_KEYS + 1), keys[np.arange(n), pick]], 1).astype("int32")
    return (text, question), values[np.arange(n), pick].astype("int32")


@register("demo", section="7.120", name="qa")
def run_qa(retrain=False, epochs=40, samples=20_000, plot=None, quiet=False, seed=0,
           strategy=None):
    """Two inputs (text, question), one answer: accuracy vs the majority class."""
    import keras

    from kerazoo.models import chapter

    with distribute.scope(strategy) as dist:
        keras.utils.set_random_seed(seed)
        model = chapter.question_answering(QA_KEYS + QA_VALUES + 1, QA_KEYS + 2, QA_VALUES)
        def train():
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            (text, question), answer = qa_data(samples, seed)
            return fit(model, [text, question], answer, epochs,
                       128 * distribute.replicas(dist), quiet)

        history, source = _train_or_load(model, "demo_qa", retrain, train)
    (text, question), answer = qa_data(5_000, TEST_SEED)
    predicted = model.predict([text, question], verbose=0, batch_size=1024).argmax(-1)
    baseline = float(np.bincount(answer).max() / len(answer))
    example = {"text": text[0].tolist(), "question": question[0].tolist(),
               "answer": int(answer[0]), "predicted": int(predicted[0])}
    return _finish({"demo": "qa", "weights": source,
                    "test_accuracy": round(float((predicted == answer).mean()), 4),
                    "baseline_accuracy": round(baseline, 4), "example": example,
                    "params": model.count_params()}, history, plot, "qa: training")


# ------------------------------------------------------------------ posts

POSTS_VOCAB, POSTS_LENGTH, INCOME_GROUPS = 500, 60, 5


def posts_data(n, seed):
    """Synthetic posts: mostly common words, plus words that depend on the
    author's age (9 bands), income group (5) and gender (2)."""
    r = rng(seed)
    age = r.uniform(16, 70, n).astype("float32")
    income = r.integers(0, INCOME_GROUPS, n)
    gender = r.integers(0, 2, n)
    kind = r.choice(4, (n, POSTS_LENGTH), p=[0.6, 0.15, 0.15, 0.1])
    band = ((age - 16) // 6).astype(int)[:, None]
    tokens = np.where(kind == 0, r.integers(100, POSTS_VOCAB, (n, POSTS_LENGTH)), 0)
    tokens = np.where(kind == 1, 1 + band * 3 + r.integers(0, 3, (n, POSTS_LENGTH)), tokens)
    tokens = np.where(kind == 2, 31 + income[:, None] * 10 + r.integers(0, 10, (n, POSTS_LENGTH)),
                      tokens)
    tokens = np.where(kind == 3, 81 + gender[:, None] * 9 + r.integers(0, 9, (n, POSTS_LENGTH)),
                      tokens)
    return tokens.astype("int32"), {"age": age[:, None], "income": income.astype("int32"),
                                    "gender": gender[:, None].astype("float32")}


# Age MSE is in years squared (~100x the cross-entropies at the start): the
# chapter's point is that the three losses must be balanced by weights.
DEFAULT_POSTS_LOSS_WEIGHTS = "age=0.01,income=1,gender=1"


@register("demo", section="7.130", name="posts")
def run_posts(retrain=False, epochs=8, samples=10_000, loss_weights=DEFAULT_POSTS_LOSS_WEIGHTS,
              plot=None, quiet=False, seed=0, strategy=None):
    """One text base, three heads (age, income, gender) vs baselines."""
    import keras

    from kerazoo.models import chapter

    weights = parse_loss_weights(loss_weights, ["age", "income", "gender"])
    # The shipped weights were trained with the default weighting.
    retrain = retrain or weights != parse_loss_weights(DEFAULT_POSTS_LOSS_WEIGHTS,
                                                       ["age", "income", "gender"])
    with distribute.scope(strategy) as dist:
        keras.utils.set_random_seed(seed)
        model = chapter.posts(POSTS_VOCAB, INCOME_GROUPS, POSTS_LENGTH)
        def train():
            # The three losses live on different scales: the chapter's point
            # is that they must be weighted (age MSE is in years squared).
            model.compile(optimizer="rmsprop",
                          loss={"age": "mse", "income": "sparse_categorical_crossentropy",
                                "gender": "binary_crossentropy"},
                          loss_weights=weights,
                          metrics={"age": ["mae"], "income": ["accuracy"],
                                   "gender": ["accuracy"]})
            x, y = posts_data(samples, seed)
            return fit(model, x, y, epochs, 64 * distribute.replicas(dist), quiet)

        history, source = _train_or_load(model, "demo_posts", retrain, train)
    x, y = posts_data(3_000, TEST_SEED)
    pred = model.predict(x, verbose=0, batch_size=512)
    summary = {
        "demo": "posts", "weights": source, "loss_weights": weights,
        "age_mae": round(float(np.abs(pred["age"] - y["age"]).mean()), 3),
        "age_baseline_mae": round(float(np.abs(np.median(y["age"]) - y["age"]).mean()), 3),
        "income_accuracy": round(float((pred["income"].argmax(-1) == y["income"]).mean()), 4),
        "income_baseline_accuracy": round(float(np.bincount(y["income"]).max() / len(x)), 4),
        "gender_accuracy": round(float(((pred["gender"] > 0.5) == (y["gender"] > 0.5)).mean()), 4),
        "gender_baseline_accuracy": round(float(max(y["gender"].mean(), 1 - y["gender"].mean())), 4),
        "params": model.count_params(),
    }
    return _finish(summary, history, plot, "posts: training")


# ------------------------------------------------------------- similarity

def digit_pairs(n, seed, split):
    """Pairs of scikit-learn's bundled 8x8 digits, read row by row as 8-step
    sequences; label 1 when both show the same digit. `split` picks the
    first (train) or second (test) half of the images, so test pairs are of
    digits the model never saw."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        from kerazoo._io import InputError

        raise InputError("the similarity demo reads scikit-learn's bundled digits: "
                         "pip install scikit-learn") from None
    digits = load_digits()
    images = (digits.images / 16.0).astype("float32")
    labels = digits.target
    half = len(images) // 2
    idx = np.arange(half) if split == "train" else np.arange(half, len(images))
    r = rng(seed)
    by_label = {d: idx[labels[idx] == d] for d in range(10)}
    same = r.random(n) < 0.5
    a = r.choice(idx, n)
    b = np.empty(n, int)
    for i in range(n):
        if same[i]:
            b[i] = r.choice(by_label[labels[a[i]]])
        else:
            other = r.choice([d for d in range(10) if d != labels[a[i]]])
            b[i] = r.choice(by_label[other])
    return (images[a], images[b]), same.astype("float32")[:, None]


@register("demo", section="7.150", name="similarity")
def run_similarity(retrain=False, epochs=15, samples=20_000, merge="abs_diff", plot=None,
                   quiet=False, seed=0, strategy=None):
    """The shared LSTM on digit pairs (same digit or not): held-out accuracy."""
    import keras

    from kerazoo.models import chapter

    retrain = retrain or merge != "abs_diff"  # the shipped weights are abs_diff's
    with distribute.scope(strategy) as dist:
        keras.utils.set_random_seed(seed)
        model = chapter.sequence_similarity(steps=8, features=8, merge=merge)
        def train():
            model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
            (a, b), y = digit_pairs(samples, seed, "train")
            return fit(model, [a, b], y, epochs, 128 * distribute.replicas(dist), quiet)

        history, source = _train_or_load(model, "demo_similarity", retrain, train)
    (a, b), y = digit_pairs(4_000, TEST_SEED, "test")
    p = model.predict([a, b], verbose=0, batch_size=1024)
    swapped = model.predict([b, a], verbose=0, batch_size=1024)
    return _finish({"demo": "similarity", "weights": source, "merge": merge,
                    "test_accuracy": round(float(((p > 0.5) == (y > 0.5)).mean()), 4),
                    "baseline_accuracy": 0.5,
                    "order_agreement": round(float(((p > 0.5) == (swapped > 0.5)).mean()), 4),
                    "params": model.count_params()}, history, plot, "similarity: training")


# ------------------------------------------------------ inception / residual

def _count(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    total = model.count_params()
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def _imagenet_top5(image_path):
    from kerazoo import backbones
    from kerazoo._io import read_image_rgb, resize_image

    model = backbones.inception_v3(weights="imagenet", include_top=True)
    batch = resize_image(read_image_rgb(image_path), 299, 299)[None]
    top = backbones.decode(model.predict(batch, verbose=0), top=5)[0]
    return [{"wnid": w, "label": label, "score": round(s, 4)} for w, label, s in top]


@register("demo", section="7.140", name="inception")
def run_inception(image=None, weights="auto", quiet=False, summary_print=None):
    """Inception modules: InceptionV3 and a small kerazoo model; top-5 with ImageNet."""
    import keras

    from kerazoo import backbones
    from kerazoo.layers import InceptionBlock
    from kerazoo.models import chapter

    small = chapter.small_inception()
    v3 = backbones.inception_v3(weights=None, include_top=True, include_preprocessing=False)
    block = InceptionBlock(128, strides=2)
    block(keras.Input((128, 128, 3)))
    result = {"demo": "inception",
              "chapter_block_params": block.count_params(),
              "small_inception": _count(small), "inception_v3": _count(v3)}
    if summary_print:
        small.summary(print_fn=summary_print)
    value, _, warning = choose_weights(weights, "inception_v3", "InceptionV3",
                                       "so no top-5 labels")
    if warning:
        result["note"] = warning
    if image is not None and value == "imagenet":
        result["top5"] = _imagenet_top5(image)
    elif image is not None:
        result["top5"] = None
    return result


@register("demo", section="7.140", name="residual")
def run_residual(quiet=False, summary_print=None):
    """Residual connections: a small kerazoo ResNet and Xception's counts."""
    import keras

    from kerazoo import backbones
    from kerazoo.models import chapter

    small = chapter.small_residual()
    xception = backbones.xception(weights=None, include_preprocessing=False)
    adds = sum(isinstance(layer, keras.layers.Add) for layer in xception.layers)
    if summary_print:
        small.summary(print_fn=summary_print)
    return {"demo": "residual", "small_residual": _count(small), "xception": _count(xception),
            "xception_residual_connections": adds}
