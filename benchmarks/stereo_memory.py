"""Peak memory of `kerazoo demo stereo` at its default settings, by input size.

    python benchmarks/stereo_memory.py [--refresh]     (about 3 minutes, 2 cores)

Each pair is a generated scene (`synthetic_pair`) upscaled to the size and
saved as JPEG (quality 95); the command runs in a fresh process and its peak
resident memory (the kernel's maxrss of the child) is reported with its wall
time and the size it matched at. The promise: under 3 GB at any size.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _results  # benchmarks/_results.py: the script's folder is on sys.path

SIZES = {"1 MP": (1155, 866), "24 MP": (6000, 4000), "27 MP": (6364, 4243),
         "100 MP": (12000, 8334)}  # fmt: skip
LIMIT_GB = 3.0


# The command in this process, its own peak printed last (a child's
# RUSAGE_CHILDREN would be the largest child so far, not this one's).
RUN = (
    "import resource, sys\n"
    "from kerazoo.app.cli import main\n"
    "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
    "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)"
)


def measure(left, right, out):
    start = time.perf_counter()
    command = [sys.executable, "-c", RUN, "demo", "stereo", str(left), str(right)]
    result = subprocess.run(
        [*command, "--out", str(out), "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"the command failed: {result.stderr[-500:]}")
    peak_kb = int(result.stderr.strip().splitlines()[-1].split()[1])
    return json.loads(result.stdout), peak_kb / 1e6, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _results.add_arguments(parser)
    args = parser.parse_args()
    from PIL import Image

    from kerazoo.app.demos.stereo_data import synthetic_pair

    scene = synthetic_pair(height=400, width=600, seed=8, max_disparity=40)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, size in SIZES.items():
            paths = []
            for side, view in (("left", scene.left), ("right", scene.right)):
                path = Path(tmp) / f"{side}.jpg"
                Image.fromarray(view).resize(size, Image.BILINEAR).save(path, quality=95)
                paths.append(path)
            summary, peak_gb, seconds = measure(*paths, Path(tmp) / "out")
            rows.append({"input": name, "size": list(size),
                         "processed_size": summary["processed_size"],
                         "max_disparity": summary["max_disparity"],
                         "peak_gb": round(peak_gb, 2), "seconds": round(seconds, 1),
                         "under_limit": peak_gb < LIMIT_GB})  # fmt: skip
            print(rows[-1], flush=True)
    print("| input | size | matched at | max disparity | peak GB | s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['input']} | {r['size'][0]}x{r['size'][1]} | {r['processed_size'][0]}x"
              f"{r['processed_size'][1]} | {r['max_disparity']} | {r['peak_gb']:.2f} | "
              f"{r['seconds']:.1f} |")  # fmt: skip
    _results.write("stereo_memory", {"limit_gb": LIMIT_GB, "rows": rows}, args.refresh)


if __name__ == "__main__":
    main()
