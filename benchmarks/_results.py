"""Where a benchmark writes its results: an untracked folder by default, the
committed `benchmarks/results/` only when asked (`--refresh`), so a run never
rewrites tracked files by surprise."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "benchmarks" / "results"
LOCAL = ROOT / "benchmarks" / "out"  # in .gitignore


def add_arguments(parser):
    parser.add_argument(
        "--refresh",
        action="store_true",
        help=f"write to {COMMITTED.relative_to(ROOT)}/ (the committed "
        f"results the README cites) instead of "
        f"{LOCAL.relative_to(ROOT)}/",
    )


def write(name, data, refresh):
    folder = COMMITTED if refresh else LOCAL
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
    print(f"results: {path.relative_to(ROOT)}")
    return path
