"""Features + correlation on Motorcycle (0.37 MP) by strip height, against
the Keras matching model, in one run per backend, network and policy.

    python benchmarks/stereo_strips.py [--refresh]    (about 17 minutes, 2 cores)

Under TensorFlow for each network (fast, accurate), under torch and JAX for
the fast one, and in each policy (float32, mixed_bfloat16), in a fresh
process: `StereoMatcher.correlate` (the network by Keras, then the compiled
correlation) in strips of about 64 to 256 rows (`stem.STRIP_ROWS`, and
`stem.TORCH_STRIP_ROWS` under torch), and the Keras matching model
(`stem.build_matching_model`: the same network, then `CorrelationVolume`)
in the strips of 64 rows it used to run in. The calls alternate between
the settings, five rounds after one to compile, and each setting's median
is reported with its ratio to the Keras model's, so that the machine's
drift hits every setting alike.
"""

import argparse
import json
import os
import subprocess
import sys

import _results  # benchmarks/_results.py: the script's folder is on sys.path

STRIP_ROWS = (64, 96, 128, 192, 256)
CASES = (("tensorflow", "fast"), ("tensorflow", "accurate"), ("torch", "fast"), ("jax", "fast"))
KERAS_MODEL = "keras model, 64 rows"

RUN = """
import json, sys, time
import numpy as np
from kerazoo.app.demos.stereo_data import motorcycle
from kerazoo.stereo import StereoMatcher, prepare_pair
from kerazoo.stereo import stem
quality, policy, keras_name = sys.argv[1], sys.argv[2], sys.argv[4]
strip_rows = json.loads(sys.argv[3])
pair = motorcycle()
left, right = prepare_pair(pair.left, pair.right)
matcher = StereoMatcher(max_disparity=pair.max_disparity, precision=policy,
                        runtime="keras", quality=quality)
model = stem.build_matching_model(pair.max_disparity, stem=matcher.features)
halo = stem.halo_rows(quality)

def keras_model():
    return stem.correlate_in_strips(stem.keras_volume_of(model), left, right, rows=64,
                                    halo_rows=halo)

def matcher_in(rows):
    def run():
        stem.STRIP_ROWS = stem.TORCH_STRIP_ROWS = rows
        return matcher.correlate(left, right, pair.max_disparity)
    return run

settings = {keras_name: keras_model, **{str(rows): matcher_in(rows) for rows in strip_rows}}
seconds = {name: [] for name in settings}
for round_ in range(6):  # the first compiles
    for name, run in settings.items():
        start = time.perf_counter()
        run()
        seconds[name].append(time.perf_counter() - start)
print(json.dumps({name: float(np.median(s[1:])) for name, s in seconds.items()}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _results.add_arguments(parser)
    args = parser.parse_args()
    rows = []
    for backend, quality in CASES:
        for policy in ("float32", "mixed_bfloat16"):
            result = subprocess.run(
                [sys.executable, "-c", RUN, quality, policy, json.dumps(STRIP_ROWS), KERAS_MODEL],
                capture_output=True,
                text=True,
                env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"},
            )
            if result.returncode != 0:
                raise SystemExit(f"{quality} {policy} failed: {result.stderr[-500:]}")
            medians = json.loads(result.stdout.strip().splitlines()[-1])
            base = medians[KERAS_MODEL]
            rows.append(
                {
                    "backend": backend,
                    "quality": quality,
                    "policy": policy,
                    "seconds": {name: round(s, 3) for name, s in medians.items()},
                    "over_keras_model": {name: round(s / base, 2) for name, s in medians.items()},
                }
            )
            print(rows[-1], file=sys.stderr, flush=True)
    names = [KERAS_MODEL, *map(str, STRIP_ROWS)]
    print("| backend | network | policy | " + " | ".join(
        n if n == KERAS_MODEL else f"correlate, {n} rows" for n in names) + " |")  # fmt: skip
    print("|---|---|---|" + "---|" * len(names))
    for r in rows:
        cells = [f"{r['seconds'][n]:.2f} s ({r['over_keras_model'][n]:.2f})" for n in names]
        print(f"| {r['backend']} | {r['quality']} | {r['policy']} | " + " | ".join(cells) + " |")
    _results.write(
        "stereo_strips",
        {"pair": "Motorcycle", "strip_rows": STRIP_ROWS, "rows": rows},
        args.refresh,
    )


if __name__ == "__main__":
    main()
