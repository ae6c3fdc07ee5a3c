"""The stereo networks' validation curves against training hours, from the
training log (benchmarks/results/stereo_training.json), as a table and a
figure.

    python benchmarks/stereo_training_curve.py [--refresh]

Each run of the log's "segmented" trainings (`demos/train_stereo.py
--checkpoint-dir`, every segment resumed from the last checkpoint) is one
curve of validation WTA (the share of validation pixels whose best
disparity is within 1 px of the truth) against its hours. A fine-tuning
from the shipped accurate weights starts where that network's run was when
they were taken (step 10500), so every curve reads in hours from the
shipped fast stem. A run with photo-only scenes (`--photo-share`) also
validates on some, and a run on the census blend (`--census-weight`)
validates the blended scores, so their WTA is on other scales. The table's last column
is the WTA gained over each run's last hour: whether the curve has
flattened. Figure:
benchmarks/results/stereo_training.png with `--refresh`, benchmarks/out/
otherwise. Needs matplotlib (the `demos` extra).
"""

import argparse
import json

import _results  # benchmarks/_results.py: the script's folder is on sys.path

LOG = _results.COMMITTED / "stereo_training.json"
ACCURATE_RUN = "demos/checkpoints/stereo_accurate"
SHIPPED_ACCURATE = "weights/stereo_xception_stem_accurate.weights.h5"
SHIPPED_ACCURATE_STEP = 10500  # the accurate run's step whose weights ship


def curves(log):
    """`{run: [(hours, step, val_wta), ...]}` of the log's segmented runs,
    fine-tunings of the shipped accurate weights shifted to its hours."""
    runs = log["segmented"]
    points = {
        name: [(p["hours"], p["step"], p["val_wta"]) for s in run["segments"] for p in s["curve"]]
        for name, run in runs.items()
    }
    shipped_hours = next(h for h, step, _ in points[ACCURATE_RUN] if step == SHIPPED_ACCURATE_STEP)
    for name, run in runs.items():
        if run["settings"].get("init") == SHIPPED_ACCURATE:
            points[name] = [(h + shipped_hours, step, wta) for h, step, wta in points[name]]
    return points


def last_hour_gain(points):
    """The WTA gained over the run's last hour (over the whole run if shorter)."""
    end_hours, _, end_wta = points[-1]
    before = [wta for hours, _, wta in points if hours <= end_hours - 1.0]
    return end_wta - (before[-1] if before else points[0][2])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _results.add_arguments(parser)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    import matplotlib.pyplot as plt

    log = json.loads(LOG.read_text())
    points = curves(log)
    lines = [
        "| run | hours | steps | validation WTA, first -> last | gained in the last hour |",
        "|---|---|---|---|---|",
    ]
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=120)
    for name, run in points.items():
        hours, steps, wta = zip(*run)
        label = name.rsplit("/", 1)[-1]
        if log["segmented"][name]["settings"].get("photo_share"):
            label += " (validated with photo scenes too)"
        if log["segmented"][name]["settings"].get("census_weight"):
            label += " (validated on the census blend)"
        axes.plot(hours, wta, marker=".", markersize=3, label=label)
        lines.append(
            f"| {name} | {hours[0]:.2f} -> {hours[-1]:.2f} | {steps[0]} -> {steps[-1]} | "
            f"{wta[0]:.4f} -> {wta[-1]:.4f} | {last_hour_gain(run):+.4f} |"
        )
    shipped = next(p for p in points[ACCURATE_RUN] if p[1] == SHIPPED_ACCURATE_STEP)
    axes.axvline(shipped[0], color="grey", linestyle=":", linewidth=1)
    axes.annotate(
        "shipped accurate",
        (shipped[0], shipped[2]),
        fontsize=8,
        xytext=(4, -12),
        textcoords="offset points",
    )
    axes.set_xlabel("training hours from the shipped fast stem (2 CPU cores)")
    axes.set_ylabel("validation WTA (within 1 px)")
    axes.set_title("Stereo networks: validation against training time")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    folder = _results.COMMITTED if args.refresh else _results.LOCAL
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "stereo_training.png"
    temporary = path.with_suffix(".tmp.png")
    figure.savefig(temporary)
    temporary.replace(path)
    print("\n".join(lines))
    print(f"figure: {path.relative_to(_results.ROOT)}")


if __name__ == "__main__":
    main()
