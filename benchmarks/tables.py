"""The README's and the guides' tables, written from the results files.

    python benchmarks/tables.py          # rewrite every table in README.md and docs/
    python benchmarks/tables.py --check  # exit 1 if one differs (tests/test_docs.py)

A table lives between `<!-- table: NAME -->` and `<!-- /table -->`; NAME is
one of `TABLES`. Every number in a table comes from `benchmarks/results/*.json`
or `weights/manifest.json`, which the benchmarks and the training scripts
write: refresh those, then run this.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from stereo import KERAZOO_ACCURATE as ACCURATE  # benchmarks/stereo.py, beside this script
from stereo import KERAZOO_FAST as KERAZOO
from stereo import SGBM_WLS as WLS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PAIRS = {
    "middlebury2014-motorcycle": "Middlebury 2014 Motorcycle (real, 741x500)",
    "shipped (demos/data)": "the shipped pair (demos/data, 512x384)",
    "synthetic-101": "generated, seed 101 (held out)",
    "synthetic-102": "generated, seed 102 (held out)",
    "synthetic-103": "generated, seed 103 (held out)",
}


def _load(name):
    return json.loads((RESULTS / f"{name}.json").read_text())


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def _rates(scores):
    return " / ".join(f"{scores[f'bad{n}']:.3f}" for n in (1, 2, 4))


def _sgbm_methods(rows):
    """SGBM's two dense settings: as its sample sets it, and the best of a
    grid chosen on the tuning pairs."""
    return ["SGBM (usual)", next(r["method"] for r in rows if r["method"].startswith("SGBM (best"))]


def _stronger_sgbm(rows):
    """Of SGBM's two settings, the one with the lower densified bad-2 (then
    bad-1) on this row: kerazoo is compared with the stronger baseline."""
    best = min(rows, key=lambda r: (r["densified"]["bad2"], r["densified"]["bad1"]))
    short = "usual" if best["method"] == "SGBM (usual)" else "grid"
    return best, short


def stereo_headline():
    """One row per pair and evaluation set: each method's densified bad-1 /
    2 / 4 and seconds; SGBM's column the stronger of its two settings there."""
    rows = _load("stereo")["rows"]
    sets = _load("stereo_sets")["rows"]
    sgbm = _sgbm_methods(rows)
    groups = [
        (label, [r for r in rows if r["pair"] == pair], "seconds")
        for pair, label in PAIRS.items()
        if not pair.startswith("shipped")
    ]
    for name, count in (("R'", 9), ("L", 12)):
        label = "warped photos, two cameras" if name == "R'" else "seen through a fence"
        group = [r for r in sets if r["set"] == name]
        groups.append((f"{name}: {label} (mean of {count}, held out)", group, "seconds_mean"))
    out = []
    for label, group, seconds in groups:
        cells = []
        for method in (KERAZOO, ACCURATE):
            r = next(r for r in group if r["method"] == method)
            cells.append(f"{_rates(r['densified'])} ({r[seconds]:.2f} s)")
        r, short = _stronger_sgbm([r for r in group if r["method"] in sgbm])
        cells.append(f"{_rates(r['densified'])} ({short}, {r[seconds]:.2f} s)")
        r = next(r for r in group if r["method"] == WLS)
        cells.append(f"{_rates(r['densified'])} ({r[seconds]:.2f} s)")
        out.append([label, *cells])
    header = [
        "densified bad-1 / 2 / 4 (seconds)",
        "**kerazoo**",
        "**kerazoo, accurate**",
        f"SGBM, the stronger of usual and grid ({sgbm[1].partition(': ')[2].rstrip(')')})",
        WLS,
    ]
    return _table(header, out)


def stereo_sets():
    out = [
        [
            f"{r['set']} (mean of {r['pairs']})",
            r["method"],
            f"{r['density']:.2f}",
            f"**{_rates(r['densified'])}**",
            f"{r['seconds_mean']:.2f}",
        ]
        for r in _load("stereo_sets")["rows"]
    ]
    header = ["set", "method", "density as produced", "densified bad-1 / 2 / 4", "seconds"]
    return _table(header, out)


def stereo_training():
    """Each segmented training's validation curve against its hours, one row
    about every 1000 steps and the last."""
    runs = _load("stereo_training")["segmented"]
    out = []
    for _, state in sorted(runs.items()):
        settings = state["settings"]
        quality = settings.get("quality", "fast")
        dilations = settings.get("refine_dilations", [1] if quality == "accurate" else [])
        if len(dilations) > 1:
            quality += f", refining blocks of dilation {' and '.join(map(str, dilations))}"
        if settings.get("edge_weight"):
            quality += f", edge weight {settings['edge_weight']:g}"
        if settings.get("photo_share"):
            # Its validation crops share the mix: not comparable with the others'.
            quality += f", {settings['photo_share']:.0%} photo-only scenes (own validation)"
        if settings.get("census_weight"):
            # Validated on the blended scores: another scale again.
            quality += f", trained on the census blend {settings['census_weight']:g} (own scale)"
        if settings.get("init", "").startswith("weights/"):
            quality += f", from {settings['init']}"
        curve = [point for segment in state["segments"] for point in segment["curve"]]
        shown = [p for i, p in enumerate(curve) if p["step"] % 1000 == 0 or i == len(curve) - 1]
        for point in shown:
            out.append([quality, point["step"], f"{point['hours']:.2f}", f"{point['val_wta']:.3f}"])
    header = ["network", "step", "hours (2 CPU cores)", "validation WTA within 1 px"]
    return _table(header, out)


def stereo_errors():
    """Where each network's bad-2 is on the tuning pairs, by what the truth
    says each pixel is (T, T' and, where measured, P side by side)."""
    rows = _load("stereo_errors")["rows"]
    cell = {(r["quality"], r["class"], r["set"]): r for r in rows}
    sets = [name for name in ("T", "T'", "P") if any(r["set"] == name for r in rows)]
    shares = [name for name in sets if name != "T'"]  # T' has T's pixels
    out = []
    for quality, cls in dict.fromkeys((r["quality"], r["class"]) for r in rows):
        got = [cell[quality, cls, name] for name in sets]
        out.append(
            [
                quality,
                cls,
                " / ".join(f"{cell[quality, cls, n]['share_of_pixels']:.3f}" for n in shares),
                " / ".join(f"{r['bad2_within']:.3f}" for r in got),
                " / ".join(f"{r['adds_to_bad2']:.4f}" for r in got),
            ]
        )
    names, share_names = " / ".join(sets), " / ".join(shares)
    header = [
        "network",
        "pixels",
        f"share ({share_names})",
        f"bad-2 within ({names})",
        f"adds to bad-2 ({names})",
    ]
    return _table(header, out)


def stereo_full():
    rows = _load("stereo")["rows"]
    out = [
        [
            PAIRS.get(r["pair"], r["pair"]),
            r["method"],
            f"{r['as_produced']['density']:.2f}",
            _rates(r["as_produced"]),
            f"**{_rates(r['densified'])}**",
            r["densified"]["mae_median"],
            f"{r['seconds']:.2f}",
        ]
        for r in rows
    ]
    header = [
        "pair",
        "method",
        "density",
        "bad-1 / 2 / 4 as produced",
        "densified bad-1 / 2 / 4",
        "densified median error px",
        "seconds",
    ]
    return _table(header, out)


def stereo_timing():
    out = [
        [
            t["backend"],
            t["policy"],
            t.get("quality", "fast"),
            f"{t['features_first_s']:.2f} / {t['features_warm_s']:.2f}",
            f"{t['matching_first_s']:.2f} / {t['matching_warm_s']:.2f}",
            f"{t['bad2']:.3f}",
        ]
        for t in _load("stereo")["timing"]
    ]
    header = [
        "backend",
        "policy",
        "network",
        "features + correlation s (first / warm)",
        "matching s (first / warm)",
        "Motorcycle bad-2",
    ]
    return _table(header, out)


def stereo_speed():
    speed = _load("stereo_speed")
    busy, seq = speed["busy_machine"], speed["sequence"]
    return "\n\n".join(
        [
            _table(
                [
                    "matching, Motorcycle (s)",
                    "idle",
                    "beside 4 busy threads",
                    "busy, one thread",
                    "busy / idle",
                ],
                [
                    [
                        f"{busy['threads']} threads",
                        f"{busy['idle_s']:.2f}",
                        f"{busy['busy_s']:.2f}",
                        f"{busy['busy_one_thread_s']:.2f}",
                        f"{busy['busy_over_idle']:.2f}",
                    ]
                ],
            ),
            _table(
                ["sequence", "frames", "first frame s", "median of the others s"],
                [
                    [
                        f"{seq['size'][0]}x{seq['size'][1]}, range {seq['max_disparity']}",
                        seq["frames"],
                        f"{seq['first_s']:.2f}",
                        f"{seq['median_after_first_s']:.2f}",
                    ]
                ],
            ),
        ]
    )


def stereo_strips():
    data = _load("stereo_strips")
    keras_model = next(iter(data["rows"][0]["seconds"]))  # the Keras model, first
    names = [keras_model, *map(str, data["strip_rows"])]
    header = ["backend", "network", "policy", keras_model]
    header += [f"correlate, {n} rows" for n in names[1:]]
    out = [
        [r["backend"], r["quality"], r["policy"]]
        + [f"{r['seconds'][n]:.2f} ({r['over_keras_model'][n]:.2f})" for n in names]
        for r in data["rows"]
    ]
    return _table(header, out)


def stereo_memory():
    out = [
        [
            r["input"],
            f"{r['size'][0]}x{r['size'][1]}",
            f"{r['processed_size'][0]}x{r['processed_size'][1]}",
            r["max_disparity"],
            f"{r['peak_gb']:.2f}",
        ]
        for r in _load("stereo_memory")["rows"]
    ]
    return _table(["input", "size", "matched at", "range px", "peak GB"], out)


def cold_start():
    data = _load("cold_start")
    out = []
    for r in data["rows"]:
        work = r.get("work_s")
        out.append(
            [
                r["command"],
                f"{r['wall_s']:.2f}",
                f"{r['import_s']:.2f}" if work else "",
                f"{work:.2f}" if work else "",
            ]
        )
    return _table(
        [f"command, fresh process (median of {data['repeats']})", "wall s", "import s", "work s"],
        out,
    )


def _percent(x):
    return f"{100 * x:.1f}%"


def demos():
    d = _load("demos")
    stereo = next(
        r
        for r in _load("stereo")["rows"]
        if r["pair"] == "middlebury2014-motorcycle" and r["method"] == KERAZOO
    )
    a, q, p, s, price = d["adder"], d["qa"], d["posts"], d["similarity"], d["price"]
    rows = [
        [
            "`stereo LEFT RIGHT`",
            "7.160",
            "one Xception stem shared by two cameras",
            f"Motorcycle densified bad-2 {stereo['densified']['bad2']:.3f} (table above)",
        ],
        [
            "`adder`",
            "7.110",
            "the functional API: a dense model adds 64 numbers",
            f"test MAE {a['test_mae']:.3f}; the chapter's baseline {a['baseline_mae']:.3f}",
        ],
        [
            "`qa`",
            "7.120",
            "two inputs (a text, a question), one softmax answer",
            f"accuracy {_percent(q['test_accuracy'])}; blind to the question "
            f"{_percent(q['question_blind_accuracy'])}, "
            f"to the text {_percent(q['text_blind_accuracy'])}",
        ],
        [
            "`posts`",
            "7.130",
            "one base, three heads: age (mse), income (softmax), gender (sigmoid)",
            f"age MAE {p['age_mae']:.2f} (median {p['age_baseline_mae']:.2f}); income "
            f"{_percent(p['income_accuracy'])} ({_percent(p['income_baseline_accuracy'])}); gender "
            f"{_percent(p['gender_accuracy'])} ({_percent(p['gender_baseline_accuracy'])})",
        ],
        [
            "`inception`",
            "7.140",
            "Inception modules; top-5 ImageNet labels with `--image`",
            "parameter counts",
        ],
        [
            "`residual`",
            "7.140",
            "residual connections: a small ResNet, Xception's 12",
            "parameter counts",
        ],
        [
            "`similarity`",
            "7.150",
            "one shared LSTM reads two digits: same or not",
            f"held-out pairs {_percent(s['test_accuracy'])}; raw-pixel L1 threshold "
            f"{_percent(s['pixel_l1_accuracy'])}",
        ],
        [
            "`price train` / `predict`",
            "7.100, 7.120",
            "metadata + description + photo -> price",
            f"validation MAE {price['validation_mae']:.2f}; median price "
            f"{price['baseline_mae']:.2f}",
        ],
    ]
    return _table(["demo", "section", "what it shows", "held-out result"], rows)


def lessons():
    d = _load("lessons")
    posts = [
        [
            name,
            f"{r['age_mae']:.3f} ({r['age_baseline_mae']:.3f})",
            f"{_percent(r['income_accuracy'])} ({_percent(r['income_baseline_accuracy'])})",
            f"{_percent(r['gender_accuracy'])} ({_percent(r['gender_baseline_accuracy'])})",
        ]
        for name, r in d["posts"].items()
    ]
    similarity = [
        [
            name,
            _percent(r["test_accuracy"]),
            _percent(r["pixel_l1_accuracy"]),
            _percent(r["order_agreement"]),
        ]
        for name, r in d["similarity"].items()
    ]
    return "\n\n".join(
        [
            _table(
                [
                    "posts loss weights",
                    "age MAE (median baseline)",
                    "income accuracy (majority)",
                    "gender accuracy (majority)",
                ],
                posts,
            ),
            _table(
                [
                    "similarity merge",
                    "held-out accuracy",
                    "raw-pixel L1 threshold",
                    "same answer with the inputs swapped",
                ],
                similarity,
            ),
        ]
    )


def backends():
    data = _load("backends")
    out = []
    for r in data["rows"]:
        fastest = r[r["fastest"]]
        unit = r["workload"].rsplit(" ", 1)[-1]
        out.append(
            [r["workload"].rsplit(" ", 1)[0]]
            + [f"{r[b] / fastest:.2f}" for b in ("tensorflow", "jax", "torch")]
            + [f"{r['fastest']} ({fastest:.3g} {unit})"]
        )
    return _table(["workload", "tensorflow", "jax", "torch", "fastest (its time)"], out)


def layer_overhead():
    data = _load("benchmark")
    out = [
        [r["layer"], r["batch"], f"{r['forward_ratio']:.3f}", f"{r['train_ratio']:.3f}"]
        for r in data["overhead"]
    ]
    return _table(["layer", "batch", "forward: kerazoo / hand-written", "train step: ratio"], out)


def model_zoo():
    """The pretrained entries of the manifest, with what each is and where it comes from."""
    files = json.loads((ROOT / "weights" / "manifest.json").read_text())["files"]
    out = []
    for name, info in files.items():
        if not info["file"].endswith((".h5", ".onnx")):
            continue  # data, not weights (the ImageNet class index)
        source = "shipped" if info.get("url") is None else "downloaded on first use"
        origin = info.get("trained_by") or "Keras's release (keras.applications)"
        out.append(
            [
                f"`{name}`",
                info["architecture"],
                f"{info['approx_size_mb']:g}",
                source,
                f"{info['hash_algorithm']} `{info['hash'][:12]}…`",
                origin,
            ]
        )
    return _table(["name", "what it is", "MB", "where", "hash", "made by"], out)


TABLES = {
    fn.__name__: fn
    for fn in (
        stereo_headline,
        stereo_sets,
        stereo_training,
        stereo_errors,
        stereo_full,
        stereo_timing,
        stereo_speed,
        stereo_strips,
        stereo_memory,
        cold_start,
        demos,
        lessons,
        backends,
        layer_overhead,
        model_zoo,
    )
}
_MARKED = re.compile(r"(<!-- table: (\w+) -->\n)(.*?)(<!-- /table -->)", re.S)


def render(text):
    """`text` with every marked table rewritten from the results."""

    def replace(match):
        name = match.group(2)
        if name not in TABLES:
            raise SystemExit(f"unknown table {name!r} (known: {', '.join(TABLES)})")
        return f"{match.group(1)}{TABLES[name]()}\n{match.group(4)}"

    return _MARKED.sub(replace, text)


def stale_documents():
    return [path for path in DOCUMENTS if render(path.read_text()) != path.read_text()]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say which files differ")
    args = parser.parse_args()
    stale = stale_documents()
    if args.check:
        for path in stale:
            print(f"stale tables: {path.relative_to(ROOT)}", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(render(path.read_text()))
        print(f"rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
