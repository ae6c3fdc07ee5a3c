"""The README's promises name their tests: every one named exists."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_the_readme_names_exists():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## What kerazoo promises", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", section)
    assert len(named) >= 10
    for path, name in named:
        tree = ast.parse((ROOT / path).read_text())
        functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert name in functions, f"README names {path}::{name}, which does not exist"


def test_the_readme_stereo_example_runs(tmp_path, monkeypatch):
    """The README's Python example of `kerazoo.stereo`, run as written (from
    the repository's root, where its paths point)."""
    import contextlib
    import io

    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Stereo", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(code.strip().splitlines()) <= 14  # a quickstart
    monkeypatch.chdir(ROOT)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})
    # The shipped pair's background lies near 10 px: 500 * 0.1 / 10 = 5 m.
    assert re.fullmatch(
        r"median disparity \d+\.\d px, median depth \d+\.\d\d m\n", printed.getvalue()
    )
