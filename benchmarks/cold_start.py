"""How long the command line takes from a cold process, in one run.

    python benchmarks/cold_start.py [--refresh] [--repeats 5]   (about 2 minutes)

Each row is a fresh process, the median of `--repeats` runs: `kerazoo demo
stereo` on the shipped pair with each runtime (its wall time, the work its
summary times, and the import of what that runtime loads, measured alone);
OpenCV's StereoSGBM as its sample sets it up, from a fresh Python process
that reads the same files and writes its map; and the commands that should
answer at once (`--help`, `list`, `weights list`) beside `python -c pass`.
Results: benchmarks/results/cold_start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _results  # benchmarks/_results.py: the script's folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
PAIR = [str(ROOT / "demos" / "data" / f"{side}.png") for side in ("left", "right")]
KERAZOO = [sys.executable, "-m", "kerazoo"]
IMPORTS = {
    # What each runtime loads before its work (the command line's modules too).
    "onnx": "import kerazoo.app.cli, kerazoo.app.demos.stereo, kerazoo.stereo.matcher, onnxruntime",
    "keras": "import kerazoo.app.cli, kerazoo.app.demos.stereo, kerazoo.stereo.matcher, "
    "keras, kerazoo.layers",
}
# OpenCV's sample setup (benchmarks/stereo.py's "SGBM (usual)"), as a script.
SGBM = """
import sys, time
start = time.perf_counter()
import cv2, numpy as np
imported = time.perf_counter()
left, right = cv2.imread(sys.argv[1]), cv2.imread(sys.argv[2])
block, disparities = 5, 128
sgbm = cv2.StereoSGBM_create(0, disparities, block, P1=8 * 3 * block**2, P2=32 * 3 * block**2,
                             disp12MaxDiff=1, uniquenessRatio=10, speckleWindowSize=100,
                             speckleRange=32, mode=cv2.STEREO_SGBM_MODE_SGBM)
disparity = sgbm.compute(left, right).astype(np.float32) / 16
np.save(sys.argv[3], disparity)
print(imported - start, time.perf_counter() - imported)
"""


def timed(command, env=None):
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def median(values):
    return round(statistics.median(values), 3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _results.add_arguments(parser)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    out = Path(tempfile.mkdtemp(prefix="kerazoo-cold-"))
    rows = []
    baseline = median([timed([sys.executable, "-c", "pass"])[0] for _ in range(args.repeats)])
    for runtime in ("onnx", "keras"):
        walls, works = [], []
        command = [*KERAZOO, "demo", "stereo", *PAIR, "--out", str(out / runtime)]
        timed(command + ["--runtime", runtime, "--json"], env)  # numba's cache, the OS's
        for _ in range(args.repeats):
            wall, stdout = timed(command + ["--runtime", runtime, "--json"], env)
            walls.append(wall)
            works.append(sum(json.loads(stdout)["seconds"].values()))
        imports = [timed([sys.executable, "-c", IMPORTS[runtime]], env)[0] for _ in range(3)]
        rows.append(
            {
                "command": f"kerazoo demo stereo (--runtime {runtime})",
                "wall_s": median(walls),
                "import_s": round(median(imports) - baseline, 3),
                "work_s": median(works),
            }
        )
        print(f"done {runtime}", file=sys.stderr, flush=True)
    walls, imports, works = [], [], []
    for _ in range(args.repeats):
        wall, stdout = timed([sys.executable, "-c", SGBM, *PAIR, str(out / "sgbm.npy")], env)
        walls.append(wall)
        imported, work = map(float, stdout.split())
        imports.append(imported)
        works.append(work)
    rows.append(
        {
            "command": "OpenCV StereoSGBM (its sample's settings), fresh Python",
            "wall_s": median(walls),
            "import_s": median(imports),
            "work_s": median(works),
        }
    )
    for command in (["--help"], ["list"], ["weights", "list"], ["demo", "stereo", "--help"]):
        wall = median([timed([*KERAZOO, *command], env)[0] for _ in range(args.repeats)])
        rows.append({"command": f"kerazoo {' '.join(command)}", "wall_s": wall})
    rows.append({"command": "python -c pass", "wall_s": baseline})

    lines = [
        f"| command (fresh process, median of {args.repeats}) | wall s | import s | work s | "
        "wall / work | wall - python -c pass, s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        work = r.get("work_s")
        lines.append(
            f"| {r['command']} | {r['wall_s']:.2f} | "
            + (f"{r['import_s']:.2f} | {work:.2f} | {r['wall_s'] / work:.2f}" if work else " | | ")
            + f" | {r['wall_s'] - baseline:.2f} |"
        )
    print("\n".join(lines))
    _results.write(
        "cold_start",
        {
            "rows": rows,
            "repeats": args.repeats,
            "pair": "demos/data (384x512)",
            "cpu_count": os.cpu_count(),
            "note": "import s: that runtime's modules imported alone, less python -c pass",
        },
        args.refresh,
    )


if __name__ == "__main__":
    main()
