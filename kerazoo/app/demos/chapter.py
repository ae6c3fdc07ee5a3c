"""The chapter's small demos: adder (7.110), qa (7.120), posts (7.130),
similarity (7.150), inception / residual (7.140).

The four trainable ones are rows of one table (`DEMOS`): how to build the
model, compile it, make its training and held-out data, and score it next to
a common-sense baseline. `run(name)` loads the weights shipped in `weights/`
(trained by `demos/train_pretrained.py` through the same `run`, sha256 in the
manifest) and answers at once; `retrain=True` trains anew. It returns the
summary and the model.

Over 500 lines on purpose: the six small demos share one table and one
training loop, which read best side by side.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from kerazoo import distribute
from kerazoo.app.demos.common import (
    check_output,
    choose_weights,
    fit,
    load_pretrained,
    parse_loss_weights,
    plot_history,
    rng,
)
from kerazoo.errors import InputError, ParameterError

TEST_SEED = 10_000  # held-out data: never the training seed


@dataclasses.dataclass(frozen=True)
class ChapterDemo:
    """One trainable chapter demo.

    `build(**options)` returns the uncompiled model; `compile(model,
    **options)` compiles it; `data(n, seed, split)` returns `(x, y)`;
    `evaluate(model, x, y)` returns the numbers to report. `options` are the
    demo's own settings (e.g. posts' loss weights); `shipped` are the values
    the weights in `weights/` were trained with: any other trains anew.
    """

    name: str
    section: str
    summary: str
    build: Callable
    compile: Callable
    data: Callable
    evaluate: Callable
    epochs: int
    samples: int
    batch_size: int
    test_samples: int
    shipped: dict = dataclasses.field(default_factory=dict)

    @property
    def weights_name(self) -> str:
        return f"demo_{self.name}"


# ------------------------------------------------------------------ adder


def adder_data(n, seed):
    x = rng(seed).random((n, 64)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


def _adder_evaluate(model, x, y):
    mae = float(np.abs(model.predict(x, verbose=0, batch_size=1024) - y).mean())
    # The chapter's common sense: 64 uniform numbers sum to about 32.
    return {"test_mae": round(mae, 4), "baseline_mae": round(float(np.abs(y - 32).mean()), 4)}


# --------------------------------------------------------------------- qa

# A text mentions one value of each topic among filler words; the question
# names a topic; the answer is the text's value of that topic. Neither input
# alone can answer: without the question the best rule is a value from the
# text (1 in QA_TOPICS), without the text the most common value of the topic
# (1 in QA_VALUES_PER_TOPIC). The chapter's model (concatenate, then one
# softmax layer) can: text and question each add evidence for the answer.
QA_TOPICS = ("colour", "animal", "city", "number")
QA_VALUES_PER_TOPIC = 6
QA_FILLER_WORDS = 20
QA_TEXT_LENGTH = 12
QA_TEXT_VOCAB = 1 + QA_FILLER_WORDS + len(QA_TOPICS) * QA_VALUES_PER_TOPIC
QA_QUESTION_VOCAB = 2 + len(QA_TOPICS)  # padding, "which", one token per topic
QA_ANSWERS = len(QA_TOPICS) * QA_VALUES_PER_TOPIC


def qa_data(n, seed):
    """`((text, question), answer)`. Text tokens: 1..20 filler words, then the
    values (answer a is token 21 + a); question: ["which", topic]."""
    r = rng(seed)
    topics, per_topic = len(QA_TOPICS), QA_VALUES_PER_TOPIC
    values = r.integers(0, per_topic, (n, topics)) + np.arange(topics) * per_topic
    text = r.integers(1, QA_FILLER_WORDS + 1, (n, QA_TEXT_LENGTH))
    slots = np.argsort(r.random((n, QA_TEXT_LENGTH)), axis=1)[:, :topics]
    np.put_along_axis(text, slots, values + QA_FILLER_WORDS + 1, axis=1)
    asked = r.integers(0, topics, n)
    question = np.stack([np.ones(n, int), 2 + asked], axis=1)
    answer = values[np.arange(n), asked]
    return (text.astype("int32"), question.astype("int32")), answer.astype("int32")


def qa_baselines(text, question, answer, train_answers=None, train_questions=None):
    """The cheap rules the model must beat, each blind to one input.

    question_blind: the most common value in the text (the strongest rule
    that never reads the question: any value of the text, 1 in 4 right).
    text_blind: the most common training answer to the asked topic.
    """
    is_value = text > QA_FILLER_WORDS
    counts = np.zeros((len(text), QA_ANSWERS), int)
    rows = np.repeat(np.arange(len(text))[:, None], text.shape[1], axis=1)
    np.add.at(counts, (rows[is_value], text[is_value] - QA_FILLER_WORDS - 1), 1)
    question_blind = counts.argmax(axis=1)
    if train_answers is None:
        train_questions, train_answers = question, answer
    by_topic = {}
    for topic in np.unique(train_questions[:, 1]):
        by_topic[topic] = np.bincount(
            train_answers[train_questions[:, 1] == topic], minlength=QA_ANSWERS
        ).argmax()
    text_blind = np.array([by_topic.get(t, 0) for t in question[:, 1]])
    return {
        "question_blind_accuracy": round(float((question_blind == answer).mean()), 4),
        "text_blind_accuracy": round(float((text_blind == answer).mean()), 4),
        "majority_accuracy": round(float(np.bincount(answer).max() / len(answer)), 4),
    }


def _qa_evaluate(model, x, answer):
    text, question = x
    predicted = model.predict([text, question], verbose=0, batch_size=1024).argmax(-1)
    # The same model with each question moved to another text: if the answer
    # really depends on the question, accuracy falls to the question-blind level.
    shuffled = question[rng(TEST_SEED + 1).permutation(len(question))]
    with_shuffled = model.predict([text, shuffled], verbose=0, batch_size=1024).argmax(-1)
    (_, train_questions), train_answers = qa_data(5_000, 0)
    topic = QA_TOPICS[int(question[0, 1]) - 2]
    example = {
        "text": text[0].tolist(),
        "question": ["which", topic],
        "answer": int(answer[0]),
        "predicted": int(predicted[0]),
    }
    return {
        "test_accuracy": round(float((predicted == answer).mean()), 4),
        "shuffled_questions_accuracy": round(float((with_shuffled == answer).mean()), 4),
        **qa_baselines(text, question, answer, train_answers, train_questions),
        "example": example,
    }


# ------------------------------------------------------------------ posts

POSTS_VOCAB, POSTS_LENGTH, INCOME_GROUPS = 500, 60, 5
POSTS_HEADS = ("age", "income", "gender")


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
    tokens = np.where(
        kind == 2, 31 + income[:, None] * 10 + r.integers(0, 10, (n, POSTS_LENGTH)), tokens
    )
    tokens = np.where(
        kind == 3, 81 + gender[:, None] * 9 + r.integers(0, 9, (n, POSTS_LENGTH)), tokens
    )
    return tokens.astype("int32"), {
        "age": age[:, None],
        "income": income.astype("int32"),
        "gender": gender[:, None].astype("float32"),
    }


# Age MSE is in years squared, far above the two cross-entropies: the
# chapter's point is that the three losses must be balanced by weights
# (benchmarks/lessons.py compares equal weights: benchmarks/results/lessons.json).
DEFAULT_POSTS_LOSS_WEIGHTS = "age=0.01,income=1,gender=1"


def _posts_compile(model, loss_weights=DEFAULT_POSTS_LOSS_WEIGHTS):
    model.compile(
        optimizer="rmsprop",
        loss={
            "age": "mse",
            "income": "sparse_categorical_crossentropy",
            "gender": "binary_crossentropy",
        },
        loss_weights=parse_loss_weights(loss_weights, POSTS_HEADS),
        metrics={"age": ["mae"], "income": ["accuracy"], "gender": ["accuracy"]},
    )


def _posts_evaluate(model, x, y):
    pred = model.predict(x, verbose=0, batch_size=512)
    return {
        "age_mae": round(float(np.abs(pred["age"] - y["age"]).mean()), 3),
        "age_baseline_mae": round(float(np.abs(np.median(y["age"]) - y["age"]).mean()), 3),
        "income_accuracy": round(float((pred["income"].argmax(-1) == y["income"]).mean()), 4),
        "income_baseline_accuracy": round(float(np.bincount(y["income"]).max() / len(x)), 4),
        "gender_accuracy": round(float(((pred["gender"] > 0.5) == (y["gender"] > 0.5)).mean()), 4),
        "gender_baseline_accuracy": round(
            float(max(y["gender"].mean(), 1 - y["gender"].mean())), 4
        ),
    }


# ------------------------------------------------------------- similarity


def digit_pairs(n, seed, split):
    """Pairs of scikit-learn's bundled 8x8 digits, read row by row as 8-step
    sequences; label 1 when both show the same digit. `split` picks the
    first (train) or second (test) half of the images, so test pairs are of
    digits the model never saw."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise InputError(
            "the similarity demo reads scikit-learn's bundled digits: pip install 'kerazoo[demos]'"
        ) from None
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


def best_threshold(distances, labels):
    """The distance threshold ("same" below it) most accurate on these pairs."""
    same = labels[:, 0] > 0.5
    candidates = np.unique(np.quantile(distances, np.linspace(0.01, 0.99, 197)))
    accuracy = [((distances < t) == same).mean() for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def pixel_l1_baseline(train_pairs, train_labels, test_pairs, test_labels):
    """No learning: "same digit" when the raw-pixel L1 distance of the two
    images is below a threshold, the threshold chosen on the training pairs."""

    def distance(pairs):
        a, b = pairs
        return np.abs(a - b).reshape(len(a), -1).sum(axis=1)

    threshold = best_threshold(distance(train_pairs), train_labels)
    return float(((distance(test_pairs) < threshold) == (test_labels[:, 0] > 0.5)).mean())


def _similarity_evaluate(model, x, y):
    a, b = x
    train_x, train_y = digit_pairs(4_000, 0, "train")

    def score(pairs):
        return model.predict(list(pairs), verbose=0, batch_size=1024)[:, 0]

    results = {}
    if model.get_layer("siamese").merge == "euclidean":
        # A distance, not a probability: "same" below the threshold that is
        # best on the training pairs.
        threshold = best_threshold(score(train_x), train_y)
        results["distance_threshold"] = round(threshold, 4)

        def same(pairs):
            return score(pairs) < threshold
    else:

        def same(pairs):
            return score(pairs) > 0.5

    p, swapped = same((a, b)), same((b, a))
    return {
        "test_accuracy": round(float((p == (y[:, 0] > 0.5)).mean()), 4),
        "pixel_l1_accuracy": round(pixel_l1_baseline(train_x, train_y, x, y), 4),
        "baseline_accuracy": 0.5,
        "order_agreement": round(float((p == swapped).mean()), 4),
        **results,
    }


def _similarity_compile(model, merge="abs_diff"):
    if merge == "euclidean":
        from kerazoo.losses import ContrastiveLoss

        model.compile(optimizer="adam", loss=ContrastiveLoss(margin=1.0))
    else:
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])


# ------------------------------------------------------------- the table


def _models():
    from kerazoo.app.models import chapter

    return chapter


DEMOS = {
    demo.name: demo
    for demo in [
        ChapterDemo(
            "adder",
            "7.110",
            "functional API: a dense model learns to add 64 numbers",
            build=lambda: _models().adder(),
            compile=lambda m: m.compile(optimizer="rmsprop", loss="mse", metrics=["mae"]),
            data=lambda n, seed, split: adder_data(n, seed),
            evaluate=_adder_evaluate,
            epochs=30,
            samples=50_000,
            batch_size=128,
            test_samples=10_000,
        ),
        ChapterDemo(
            "qa",
            "7.120",
            "two inputs (text, question), one softmax answer",
            build=lambda: _models().question_answering(
                QA_TEXT_VOCAB, QA_QUESTION_VOCAB, QA_ANSWERS
            ),
            compile=lambda m: m.compile(
                optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
            ),
            data=lambda n, seed, split: qa_data(n, seed),
            evaluate=_qa_evaluate,
            epochs=12,
            samples=20_000,
            batch_size=128,
            test_samples=5_000,
        ),
        ChapterDemo(
            "posts",
            "7.130",
            "one base, three heads: age (mse), income (softmax), gender (sigmoid)",
            build=lambda loss_weights=None: _models().posts(
                POSTS_VOCAB, INCOME_GROUPS, POSTS_LENGTH
            ),
            compile=_posts_compile,
            data=lambda n, seed, split: posts_data(n, seed),
            evaluate=_posts_evaluate,
            epochs=8,
            samples=10_000,
            batch_size=64,
            test_samples=3_000,
            shipped={"loss_weights": DEFAULT_POSTS_LOSS_WEIGHTS},
        ),
        ChapterDemo(
            "similarity",
            "7.150",
            "the shared LSTM: same digit or not (scikit-learn's digits)",
            build=lambda merge="abs_diff": _models().sequence_similarity(
                steps=8, features=8, merge=merge
            ),
            compile=_similarity_compile,
            data=digit_pairs,
            evaluate=_similarity_evaluate,
            epochs=15,
            samples=20_000,
            batch_size=128,
            test_samples=4_000,
            shipped={"merge": "abs_diff"},
        ),
    ]
}


def _same_options(demo, options):
    if demo.name == "posts":  # compare the parsed weights, not their spelling
        return parse_loss_weights(options["loss_weights"], POSTS_HEADS) == parse_loss_weights(
            demo.shipped["loss_weights"], POSTS_HEADS
        )
    return options == demo.shipped


def run(
    name,
    retrain=False,
    epochs=None,
    samples=None,
    plot=None,
    quiet=False,
    seed=0,
    strategy=None,
    **options,
):
    """Runs chapter demo `name`: `(summary, model)`.

    Loads the shipped weights unless `retrain` (or `options` other than those
    they were trained with); then scores the model on held-out data
    (`TEST_SEED`) next to the demo's baseline.
    """
    import keras

    if name not in DEMOS:
        raise ParameterError("name", f"must be one of {tuple(DEMOS)}, received {name!r}")
    demo = DEMOS[name]
    unknown = set(options) - set(demo.shipped)
    if unknown:
        raise ParameterError(sorted(unknown)[0], f"is not an option of the {name} demo")
    options = {**demo.shipped, **options}
    retrain = retrain or not _same_options(demo, options)
    if plot and not retrain:
        raise ParameterError("plot", "draws the training curves: it needs `retrain`")
    check_output(plot, "plot")
    epochs = epochs or demo.epochs
    history = None
    with distribute.scope(strategy) as dist:
        keras.utils.set_random_seed(seed)
        model = demo.build(**options)
        if retrain:
            demo.compile(model, **options)
            x, y = demo.data(samples or demo.samples, seed, "train")
            history = fit(model, x, y, epochs, demo.batch_size * distribute.replicas(dist), quiet)
            source = "trained now"
        else:
            # The shipped files hold weights only: loaded uncompiled.
            source = str(load_pretrained(model, demo.weights_name))
        replicas = distribute.replicas(dist)
    x, y = demo.data(demo.test_samples, TEST_SEED, "test")
    summary = {
        "demo": name,
        "weights": source,
        **options,
        **demo.evaluate(model, x, y),
        "params": model.count_params(),
    }
    if name == "posts":
        summary["loss_weights"] = parse_loss_weights(options["loss_weights"], POSTS_HEADS)
    if strategy not in (None, "none"):
        summary["replicas"] = replicas
    if history is not None:
        summary["history"] = {k: v[-1] for k, v in history.items()}
        if plot:
            summary["plot"] = str(plot_history(history, plot, f"{name}: training"))
    return summary, model


# ------------------------------------------------------ inception / residual


def _count(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    total = model.count_params()
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def _imagenet_top5(image_path, weights_path):
    from kerazoo import backbones
    from kerazoo._io import read_image_rgb, resize_image

    model = backbones.inception_v3(weights=weights_path, include_top=True)
    batch = resize_image(read_image_rgb(image_path), 299, 299)[None]
    top = backbones.decode(model.predict(batch, verbose=0), top=5)[0]
    return [{"wnid": w, "label": label, "score": round(s, 4)} for w, label, s in top]


def run_inception(image=None, weights="auto", quiet=False, summary_print=None):
    """Inception modules: InceptionV3 and a small kerazoo model; top-5 with ImageNet."""
    import keras

    from kerazoo import backbones
    from kerazoo.app.models import chapter
    from kerazoo.layers import InceptionBlock

    small = chapter.small_inception()
    v3 = backbones.inception_v3(weights=None, include_top=True, include_preprocessing=False)
    block = InceptionBlock(128, strides=2)
    block(keras.Input((128, 128, 3)))
    result = {
        "demo": "inception",
        "chapter_block_params": block.count_params(),
        "small_inception": _count(small),
        "inception_v3": _count(v3),
    }
    if summary_print:
        small.summary(print_fn=summary_print)
    path, _, warning = choose_weights(
        weights,
        backbones.weights_file("inception_v3", include_top=True),
        "InceptionV3",
        "so no top-5 labels",
    )
    if warning:
        result["note"] = warning
    if image is not None and path is not None:
        result["top5"] = _imagenet_top5(image, path)
    elif image is not None:
        result["top5"] = None
    return result


def run_residual(quiet=False, summary_print=None):
    """Residual connections: a small kerazoo ResNet and Xception's counts."""
    import keras

    from kerazoo import backbones
    from kerazoo.app.models import chapter

    small = chapter.small_residual()
    xception = backbones.xception(weights=None, include_preprocessing=False)
    adds = sum(isinstance(layer, keras.layers.Add) for layer in xception.layers)
    if summary_print:
        small.summary(print_fn=summary_print)
    return {
        "demo": "residual",
        "small_residual": _count(small),
        "xception": _count(xception),
        "xception_residual_connections": adds,
    }
