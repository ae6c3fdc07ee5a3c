"""The README's table of the chapter demos, from the demos themselves.

    python benchmarks/demos.py [--refresh]            (about 4 minutes, 2 cores)

Runs each chapter demo as a user does (`kerazoo demo NAME --json`: shipped
weights, held-out data) and the price demo's README command on the 150 items
that ship in demos/data/price (untrained InceptionV3, as on any machine
without ImageNet weights), with `--ablation`: the same model trained without
each input. Prints the README's table; writes every number to the results.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import _results  # benchmarks/_results.py: the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]


def demo(*args):
    result = subprocess.run(
        [sys.executable, "-m", "kerazoo", "demo", *map(str, args), "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "KERAS_BACKEND": "tensorflow"},
    )
    return json.loads(result.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _results.add_arguments(parser)
    args = parser.parse_args()
    results = {name: demo(name) for name in ("adder", "qa", "posts", "similarity")}
    with tempfile.TemporaryDirectory() as tmp:
        results["price"] = demo(
            "price",
            "train",
            "--data",
            ROOT / "demos/data/price/items.csv",
            "--epochs",
            8,
            "--weights",
            "none",
            "--ablation",
            "--out",
            Path(tmp) / "price.keras",
        )
    a, q, p, s, pr = (results[k] for k in ("adder", "qa", "posts", "similarity", "price"))
    rows = [
        ("adder", f"test MAE {a['test_mae']} vs the chapter's baseline {a['baseline_mae']}"),
        (
            "qa",
            f"accuracy {q['test_accuracy']:.1%}; rules blind to the question "
            f"{q['question_blind_accuracy']:.1%}, to the text {q['text_blind_accuracy']:.1%};"
            f" questions shuffled {q['shuffled_questions_accuracy']:.1%}",
        ),
        (
            "posts",
            f"age MAE {p['age_mae']} vs {p['age_baseline_mae']}; income "
            f"{p['income_accuracy']:.1%} vs {p['income_baseline_accuracy']:.1%}; gender "
            f"{p['gender_accuracy']:.1%} vs {p['gender_baseline_accuracy']:.1%}",
        ),
        (
            "similarity",
            f"held-out pairs {s['test_accuracy']:.1%} vs raw-pixel L1 threshold "
            f"{s['pixel_l1_accuracy']:.1%} (chance 50%), order-symmetric "
            f"{s['order_agreement']:.0%}",
        ),
        (
            "price",
            f"validation MAE {pr['validation_mae']} vs median {pr['baseline_mae']}; "
            "without " + ", ".join(f"{k} {v}" for k, v in pr["validation_mae_without"].items()),
        ),
    ]
    for name, text in rows:
        print(f"| {name} | {text} |")
    _results.write("demos", results, args.refresh)


if __name__ == "__main__":
    main()
