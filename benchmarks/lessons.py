"""The lessons the README draws from the chapter demos, measured in one run.

    python benchmarks/lessons.py [--refresh]        (about 4 minutes, 2 cores)

1. posts (7.130): summed with equal weights, the age MSE (years squared)
   drowns the other two losses, and income accuracy falls towards the
   majority baseline; the default weighting (age=0.01) trains all three heads.
2. similarity (7.150): the chapter's `concat` merge feeds [e1, e2] to a
   linear head, which cannot compare the two encodings (about chance);
   `abs_diff` can; `euclidean` trained with ContrastiveLoss (no head) does
   best. All next to the raw-pixel L1 threshold (no learning).

Every model is trained here, from the same seed, on the demos' own data;
held-out data as the demos report it.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _results  # noqa: E402  (benchmarks/_results.py: the script's folder is on sys.path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _results.add_arguments(parser)
    args = parser.parse_args()

    from kerazoo.app.demos import chapter

    posts = {}
    for label, weights in (
        ("age=0.01,income=1,gender=1", chapter.DEFAULT_POSTS_LOSS_WEIGHTS),
        ("equal (age=1,income=1,gender=1)", "age=1,income=1,gender=1"),
    ):
        summary, _ = chapter.run("posts", retrain=True, loss_weights=weights, quiet=True)
        posts[label] = {
            k: summary[k]
            for k in (
                "age_mae",
                "age_baseline_mae",
                "income_accuracy",
                "income_baseline_accuracy",
                "gender_accuracy",
                "gender_baseline_accuracy",
            )
        }
    similarity = {}
    for merge in ("abs_diff", "concat", "euclidean"):
        summary, _ = chapter.run("similarity", retrain=True, merge=merge, quiet=True)
        similarity[merge] = {
            k: summary[k] for k in ("test_accuracy", "pixel_l1_accuracy", "order_agreement")
        }

    print(
        "| posts loss weights | age MAE (median baseline) | income acc. (majority) "
        "| gender acc. (majority) |"
    )
    print("|---|---|---|---|")
    for label, r in posts.items():
        print(
            f"| {label} | {r['age_mae']} ({r['age_baseline_mae']}) | "
            f"{r['income_accuracy']:.1%} ({r['income_baseline_accuracy']:.1%}) | "
            f"{r['gender_accuracy']:.1%} ({r['gender_baseline_accuracy']:.1%}) |"
        )
    print()
    print("| similarity merge | held-out accuracy | raw-pixel L1 threshold | same answer swapped |")
    print("|---|---|---|---|")
    for merge, r in similarity.items():
        print(
            f"| {merge} | {r['test_accuracy']:.1%} | {r['pixel_l1_accuracy']:.1%} | "
            f"{r['order_agreement']:.1%} |"
        )
    _results.write("lessons", {"posts": posts, "similarity": similarity}, args.refresh)


if __name__ == "__main__":
    main()
