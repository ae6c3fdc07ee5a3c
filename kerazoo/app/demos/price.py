"""`kerazoo demo price`: second-hand clothing prices from metadata, a text
description and a photo (sections 7.100 and 7.120: a multi-input model).

Metadata (brand, age, condition) -> Dense; description -> TextVectorization
-> Embedding -> GRU; photo -> frozen InceptionV3 (ImageNet when it resolves)
with average pooling; the three are concatenated -> Dense -> price. The saved
`.keras` model holds its vocabularies (text, brands, conditions), the age
normalisation and the image preprocessing, so it predicts from raw values
after reloading in a fresh process.

CSV columns: brand, age_years, condition, description, image, price (image:
a file name relative to the images folder, default the CSV's folder).

Over 500 lines on purpose: the demo's data generator, CSV reader, model
and training belong to one demo; `read_items` and `train` are long
because each check or stage is one line of a linear story.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from kerazoo._io import atomic_write, load_keras_model, read_image_rgb, resize_image
from kerazoo.errors import InputError, ParameterError

IMAGE_SIZE = 75  # InceptionV3's smallest input: the photos only show coarse cues
BRANCHES = {
    "metadata": ("brand", "condition", "age_years"),
    "description": ("description",),
    "photo": ("image",),
}
COLUMNS = ("brand", "age_years", "condition", "description", "image", "price")
# The numbers a row may hold: beyond these a float32 model sees inf or noise.
NUMBER_RANGES = {"age_years": (0.0, 200.0), "price": (0.0, 1e9)}
# The photos are held in memory as uint8 (17 KB each): this many rows is
# about 1.7 GB of them; a larger CSV is refused before any is decoded.
MAX_ROWS = 100_000
SEED = 0

# The rule behind the generated data (so the demo's result can be checked).
BRANDS = {"acme": 20, "northwind": 35, "contoso": 50, "fabrikam": 80, "lumen": 120, "vela": 200}
CONDITIONS = {"new": 1.0, "like new": 0.85, "good": 0.7, "fair": 0.5, "poor": 0.3}
MATERIALS = {"silk": 1.4, "wool": 1.2, "cotton": 1.0, "polyester": 0.8}
GARMENTS = {"jacket": 1.3, "dress": 1.1, "skirt": 0.9, "shirt": 0.8}
FLAGS = {"designer label": 1.3, "vintage": 1.1, "small stain": 0.7, "torn seam": 0.6}
PATTERNS = {"plain": 1.0, "stripes": 1.25, "checks": 1.5}  # seen only in the photo


def _require_tensorflow():
    import keras

    if keras.backend.backend() != "tensorflow":
        raise InputError(
            "the price model keeps its text vocabulary inside the model (TextVectorization), "
            "which Keras 3 runs on TensorFlow only: run with KERAS_BACKEND=tensorflow"
        )


# ------------------------------------------------------------------ data


def _draw_garment(r, garment, pattern):
    from PIL import Image, ImageDraw

    size = IMAGE_SIZE
    background = tuple(int(v) for v in r.integers(200, 256, 3))
    colour = tuple(int(v) for v in r.integers(20, 200, 3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    m = size // 8
    shapes = {
        "shirt": [
            (m, 2 * m),
            (3 * m, m),
            (5 * m, m),
            (7 * m, 2 * m),
            (6 * m, 3 * m),
            (6 * m, 7 * m),
            (2 * m, 7 * m),
            (2 * m, 3 * m),
        ],
        "jacket": [(m, 2 * m), (3 * m, m), (5 * m, m), (7 * m, 2 * m), (7 * m, 7 * m), (m, 7 * m)],
        "dress": [
            (3 * m, m),
            (5 * m, m),
            (5 * m, 3 * m),
            (7 * m, 7 * m),
            (m, 7 * m),
            (3 * m, 3 * m),
        ],
        "skirt": [(3 * m, 2 * m), (5 * m, 2 * m), (7 * m, 7 * m), (m, 7 * m)],
    }
    polygon = shapes[garment]
    mask = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask).polygon(polygon, fill=255)
    fabric = Image.new("RGB", (size, size), colour)
    fd = ImageDraw.Draw(fabric)
    dark = tuple(max(0, c - 90) for c in colour)
    if pattern == "stripes":
        for y in range(0, size, 6):
            fd.rectangle([0, y, size, y + 2], fill=dark)
    elif pattern == "checks":
        for y in range(0, size, 8):
            for x in range(0, size, 8):
                if (x // 8 + y // 8) % 2:
                    fd.rectangle([x, y, x + 7, y + 7], fill=dark)
    image.paste(fabric, (0, 0), mask)
    draw.polygon(polygon, outline=(30, 30, 30))
    array = np.asarray(image, np.float32) + r.normal(0, 4, (size, size, 3))
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def synthetic_dataset(n, out_dir, seed=SEED):
    """Writes `items.csv` and `images/` for n generated items; returns the CSV path.

    price = brand base x condition x exp(-0.15 age) x material x garment x
    flags x photo pattern x lognormal(0, 0.1) noise.
    """
    r = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        brand = r.choice(list(BRANDS))
        condition = r.choice(list(CONDITIONS))
        material = r.choice(list(MATERIALS))
        garment = r.choice(list(GARMENTS))
        pattern = r.choice(list(PATTERNS))
        flags = [f for f in FLAGS if r.random() < 0.2]
        age = round(float(r.uniform(0, 10)), 1)
        price = (
            BRANDS[brand]
            * CONDITIONS[condition]
            * math.exp(-0.15 * age)
            * MATERIALS[material]
            * GARMENTS[garment]
            * PATTERNS[pattern]
            * math.prod(FLAGS[f] for f in flags)
            * math.exp(r.normal(0, 0.1))
        )
        adjective = r.choice(["lovely", "classic", "comfortable", "simple", "elegant"])
        description = " ".join([adjective, material, garment] + flags)
        image_name = f"item_{i:05d}.png"
        _draw_garment(r, garment, pattern).save(out_dir / "images" / image_name)
        rows.append([brand, age, condition, description, image_name, round(price, 2)])
    csv_path = out_dir / "items.csv"

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            writer.writerows(rows)

    atomic_write(csv_path, write)
    return csv_path


def read_items(csv_path, images_dir=None):
    """Reads and checks the CSV. Returns (items, problems): items is a dict of
    arrays; problems lists 'line N: why' for every skipped row."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InputError(f"{csv_path}: no such file")
    images_dir = Path(images_dir) if images_dir else csv_path.parent / "images"
    if not images_dir.is_dir():
        images_dir = csv_path.parent
    try:
        # utf-8-sig: a byte-order mark (spreadsheets write one) is not part of "brand".
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise InputError(
                    f"{csv_path}: missing column(s) {', '.join(missing)}; "
                    f"expected {', '.join(COLUMNS)}"
                )
            twice = sorted({c for c in COLUMNS if header.count(c) > 1})
            if twice:
                raise InputError(
                    f"{csv_path}: line 1: column(s) {', '.join(twice)} appear "
                    "more than once in the header; which one is meant?"
                )
            rows, problems = [], []
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:  # one bad row (a huge field) is that row's problem
                    # The reader counts the lines before the one it failed on.
                    problems.append(f"line {reader.line_num + 1}: {e}")
                    continue
                rows.append((reader.line_num, row))
    except (UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{csv_path}: not a readable CSV ({e})") from None
    if len(rows) > MAX_ROWS:
        raise InputError(
            f"{csv_path}: {len(rows):,} rows, over the {MAX_ROWS:,} this demo trains on in "
            "memory (about 1.7 GB of photos): give a sample of them"
        )
    items = {k: [] for k in COLUMNS}
    items["image"] = []
    for line, row in rows:
        numbers = {key: _number_in(row[key], *NUMBER_RANGES[key]) for key in NUMBER_RANGES}
        bad = [key for key, value in numbers.items() if value is None]
        if bad:
            low, high = NUMBER_RANGES[bad[0]]
            problems.append(
                f"line {line}: {bad[0]} {row[bad[0]]!r} is not a number from {low:g} to {high:g}"
            )
            continue
        age, price = numbers["age_years"], numbers["price"]
        description = (row["description"] or "").strip()
        if not description:
            problems.append(f"line {line}: empty description")
            continue
        brand, condition = (row["brand"] or "").strip(), (row["condition"] or "").strip()
        if not brand or not condition:
            problems.append(f"line {line}: empty brand or condition")
            continue
        # Judged by its name, not where a link leads: a folder of per-file
        # links (git-annex, DVC) is fine, "../x.png" is not.
        image_path = Path(os.path.normpath(images_dir.absolute() / (row["image"] or "")))
        if row["image"] and not image_path.is_relative_to(
            Path(os.path.normpath(images_dir.absolute()))
        ):
            problems.append(f"line {line}: image {row['image']!r} is outside {images_dir}")
            continue
        if not row["image"] or not image_path.is_file():
            problems.append(f"line {line}: image {row['image']!r} not found in {images_dir}")
            continue
        try:
            image = load_photo(image_path)
        except InputError as e:
            problems.append(f"line {line}: {e}")
            continue
        items["brand"].append(brand)
        items["condition"].append(condition)
        items["age_years"].append(age)
        items["description"].append(description)
        items["price"].append(price)
        items["image"].append(image)
    problems.sort(key=lambda problem: int(problem.split(":", 1)[0].split()[1]))
    if not items["price"]:
        raise InputError(
            f"{csv_path}: no usable row ({len(problems)} skipped; first: "
            f"{problems[0] if problems else 'the file has no rows'})"
        )
    arrays = {
        k: np.array(v, dtype="float32" if k in ("age_years", "price") else object)
        for k, v in items.items()
        if k != "image"
    }
    arrays["image"] = np.stack(items["image"])  # uint8: a quarter of float32
    return arrays, problems


def _number_in(text, low, high):
    """float(text) if it is a number from `low` to `high`, else None."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and low <= value <= high else None


def load_photo(path):
    """The photo at the model's size, RGB uint8."""
    image = read_image_rgb(path)
    if image.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
        image = resize_image(image, IMAGE_SIZE, IMAGE_SIZE)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _model_inputs(items, branches=tuple(BRANCHES), uint8_images=False):
    """The inputs of `branches` as TensorFlow tensors (Keras's numpy adapter
    does not take strings; this demo runs on TensorFlow anyway)."""
    import tensorflow as tf

    def strings(values):
        return tf.constant([[str(v)] for v in values], dtype=tf.string)

    tensors = {
        "brand": lambda: strings(items["brand"]),
        "condition": lambda: strings(items["condition"]),
        "age_years": lambda: tf.constant(items["age_years"][:, None], tf.float32),
        "description": lambda: strings(items["description"]),
        # Kept uint8 until a batch is taken (`_dataset`): a quarter of the memory.
        "image": lambda: (
            tf.constant(items["image"], tf.uint8)
            if uint8_images
            else tf.cast(tf.constant(items["image"]), tf.float32)
        ),
    }
    return {name: tensors[name]() for b in branches for name in BRANCHES[b]}


def _dataset(items, batch_size=32, shuffle=False, branches=tuple(BRANCHES)):
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices(
        (
            _model_inputs(items, branches, uint8_images=True),
            tf.constant(items["price"][:, None], tf.float32),
        )
    )
    if shuffle:
        data = data.shuffle(len(items["price"]), seed=SEED)

    def as_float(inputs, price):
        if "image" in inputs:
            inputs = {**inputs, "image": tf.cast(inputs["image"], tf.float32)}
        return inputs, price

    return data.batch(batch_size).map(as_float)


# ----------------------------------------------------------------- model


def build_price_model(
    train_items, weights=None, vocabulary_size=2000, sequence_length=16, branches=tuple(BRANCHES)
):
    """The multi-input model, its preprocessing adapted to `train_items`.

    `branches` (default: all three) are the inputs it uses; fewer make the
    ablation models that show what each input adds."""
    import keras
    from keras import layers

    from kerazoo import backbones

    brand = keras.Input((1,), dtype="string", name="brand")
    condition = keras.Input((1,), dtype="string", name="condition")
    age = keras.Input((1,), name="age_years")
    description = keras.Input((1,), dtype="string", name="description")
    image = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")

    brand_lookup = layers.StringLookup(output_mode="one_hot", name="brand_lookup")
    brand_lookup.adapt(train_items["brand"].astype(str))
    condition_lookup = layers.StringLookup(output_mode="one_hot", name="condition_lookup")
    condition_lookup.adapt(train_items["condition"].astype(str))
    age_norm = layers.Normalization(name="age_normalization")
    age_norm.adapt(train_items["age_years"][:, None])
    metadata = layers.concatenate(
        [
            layers.Flatten()(brand_lookup(brand)),
            layers.Flatten()(condition_lookup(condition)),
            age_norm(age),
        ],
        name="metadata",
    )
    metadata = layers.Dense(32, activation="relu", name="metadata_dense")(metadata)

    vectorize = layers.TextVectorization(
        vocabulary_size, output_sequence_length=sequence_length, name="text_vectorization"
    )
    vectorize.adapt(train_items["description"].astype(str))
    tokens = layers.Reshape((sequence_length,), name="tokens")(vectorize(description))
    text = layers.Embedding(vocabulary_size, 32, mask_zero=True, name="embedding")(tokens)
    text = layers.GRU(32, name="gru")(text)

    inception = backbones.inception_v3(
        weights=weights, pooling="avg", input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3)
    )
    inception.trainable = False  # frozen: a feature extractor, as in the chapter
    photo = layers.Dense(32, activation="relu", name="image_dense")(inception(image))

    used = {"metadata": metadata, "description": text, "photo": photo}
    features = [used[b] for b in BRANCHES if b in branches]
    x = layers.concatenate(features, name="merge") if len(features) > 1 else features[0]
    x = layers.Dense(64, activation="relu", name="dense")(x)
    # The log of the price relative to the median: a price is never negative,
    # and the output starts at the median (exp(0) = 1).
    x = layers.Dense(1, name="log_relative_price")(x)
    x = layers.Activation("exponential", name="relative_price")(x)
    scale = float(np.median(train_items["price"]))
    price = layers.Rescaling(scale, name="price")(x)
    inputs = {
        "brand": brand,
        "condition": condition,
        "age_years": age,
        "description": description,
        "image": image,
    }
    return keras.Model(
        {name: inputs[name] for b in BRANCHES if b in branches for name in BRANCHES[b]},
        price,
        name="price",
    )


def _subset(items, idx):
    return {k: v[idx] for k, v in items.items()}


def train(
    data,
    images=None,
    epochs=10,
    out="price_model.keras",
    weights="auto",
    validation_split=0.2,
    plot=None,
    quiet=False,
    strategy=None,
    report=None,
    ablation=False,
):
    """Multi-input price model (metadata + text + photo) vs the median baseline;
    with `ablation`, also the validation MAE of the same model trained
    without each input (`validation_mae_without`).

    `report(line)` hears of skipped rows, a fallback to untrained weights and
    the model's summary (unless `quiet`); nothing is printed here.
    """
    import keras

    from kerazoo import backbones, distribute
    from kerazoo.app.demos.common import (
        check_output,
        choose_weights,
        fit,
        plot_history,
        remove_stale_temporaries,
    )

    report = report or (lambda line: None)
    _require_tensorflow()
    check_output(out, "out")
    check_output(plot, "plot")
    items, problems = read_items(data, images)
    for problem in problems:
        report(f"skipped {problem}")
    n = len(items["price"])
    if n < 5:
        raise InputError(f"{data}: only {n} usable rows; need at least 5 to train and validate")
    weights_path, weights_label, warning = choose_weights(
        weights,
        backbones.weights_file("inception_v3"),
        "InceptionV3",
        "the photo branch uses a frozen UNTRAINED InceptionV3",
    )
    if warning:
        report(warning)

    order = np.random.default_rng(SEED).permutation(n)
    n_val = max(1, int(round(n * validation_split)))
    val, tr = _subset(items, order[:n_val]), _subset(items, order[n_val:])

    def fit_and_score(branches, show_summary):
        keras.utils.set_random_seed(SEED)
        with distribute.scope(strategy) as dist:
            model = build_price_model(tr, weights_path, branches=branches)
            if show_summary:
                model.summary(print_fn=lambda line, **_: report(line))
            model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mae", metrics=["mae"])
            batch = 32 * distribute.replicas(dist)
            history = fit(
                model,
                _dataset(tr, batch, shuffle=True, branches=branches),
                None,
                epochs,
                None,
                quiet,
                validation_data=_dataset(val, batch, branches=branches),
            )
        predicted = model.predict(_dataset(val, branches=branches), verbose=0)[:, 0]
        return model, history, float(np.abs(predicted - val["price"]).mean())

    model, history, mae = fit_and_score(tuple(BRANCHES), show_summary=not quiet)
    baseline = float(np.abs(np.median(tr["price"]) - val["price"]).mean())
    remove_stale_temporaries(out)  # a killed earlier run's half-written model
    atomic_write(out, lambda tmp: model.save(tmp), suffix=".keras")
    summary = {
        "demo": "price",
        "rows": n,
        "skipped": len(problems),
        "problems": problems[:20],
        "train": n - n_val,
        "validation": n_val,
        "epochs": epochs,
        "image_weights": weights_label,
        "validation_mae": round(mae, 3),
        "baseline_mae": round(baseline, 3),
        "model": str(out),
        "params": model.count_params(),
    }
    if ablation:
        # The chapter's point is the multi-input model: the same training
        # without each input in turn shows what that input adds.
        summary["validation_mae_without"] = {}
        for dropped in BRANCHES:
            report(f"ablation: training without the {dropped}")
            kept = tuple(b for b in BRANCHES if b != dropped)
            summary["validation_mae_without"][dropped] = round(
                fit_and_score(kept, show_summary=False)[2], 3
            )
    if plot:
        summary["plot"] = str(plot_history(history, plot, "price: training"))
    return summary


def predict(model_path, brand, age, condition, description, image):
    """Loads a saved price model and prices one item."""
    import keras

    _require_tensorflow()
    model_path = Path(model_path)
    if not math.isfinite(age) or age < 0:
        raise ParameterError("age", f"must be a number >= 0, received {age}")
    if not description.strip():
        raise ParameterError("description", "must not be empty")
    photo = load_photo(image)
    model = load_keras_model(model_path)
    try:
        structure = model.input
    except (AttributeError, ValueError):  # e.g. a Sequential never called
        structure = None
    inputs = (
        sorted(structure)
        if isinstance(structure, dict)
        else [str(t.name) for t in getattr(model, "inputs", None) or []]
    )
    if set(inputs) != {name for names in BRANCHES.values() for name in names}:
        raise InputError(
            f"{model_path}: not a price model from `kerazoo demo price train` "
            f"(its inputs: {', '.join(inputs)})"
        )
    warnings = []
    for column, value in (("brand", brand), ("condition", condition)):
        known = [str(v) for v in model.get_layer(f"{column}_lookup").get_vocabulary()[1:]]
        if value not in known:
            warnings.append(
                f"unknown {column} {value!r} (the model knows {', '.join(known)}): "
                "priced as an unseen one"
            )
    item = {
        "brand": np.array([brand]),
        "condition": np.array([condition]),
        "age_years": np.array([age], "float32"),
        "description": np.array([description]),
        "image": photo[None],
    }
    price = float(keras.ops.convert_to_numpy(model(_model_inputs(item)))[0, 0])
    if not math.isfinite(price):
        raise ParameterError("age", f"{age} is far outside what the model was trained on")
    return {
        "demo": "price",
        "model": str(model_path),
        "price": round(price, 2),
        "warnings": warnings,
        "item": {
            "brand": brand,
            "age_years": age,
            "condition": condition,
            "description": description,
            "image": str(image),
        },
    }
