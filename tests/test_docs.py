"""The README and the guides in docs/: every Python block runs, every table
is the one its results file gives, every relative link points somewhere."""

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path):
    return _BLOCK.findall(path.read_text())


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_runs(path, monkeypatch):
    """A document's blocks run in order in one namespace, from the
    repository's root (where their paths point), as a reader would paste
    them."""
    blocks = python_blocks(path)
    if not blocks:
        pytest.skip("no Python block")
    monkeypatch.chdir(ROOT)
    namespace = {"__name__": "__docs__"}
    for number, code in enumerate(blocks, 1):
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(code, f"{path.name}, block {number}", "exec"), namespace)


def test_the_guides_have_code():
    assert sum(len(python_blocks(p)) for p in DOCUMENTS) >= 15


def test_tables_match_their_results():
    """The tables come from benchmarks/results/ through benchmarks/tables.py."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "tables.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr + "\nrun: python benchmarks/tables.py"
    for path in DOCUMENTS:
        for name, body in re.findall(r"<!-- table: (\w+) -->\n(.*?)<!-- /table -->",
                                     path.read_text(), re.S):  # fmt: skip
            assert body.strip(), f"{path.name}: table {name} is empty"


@pytest.mark.parametrize("path", [*DOCUMENTS, ROOT / "CONTRIBUTING.md"], ids=lambda p: p.name)
def test_relative_links_point_to_files(path):
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text()):
        if "://" in target:
            continue
        assert (path.parent / target).exists(), f"{path.name} links to {target}"


def test_the_readme_is_a_front_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 270  # a front page, not a manual
    for heading in ("## Install", "## The layers", "## Stereo", "## Pretrained weights",
                    "## What kerazoo promises", "## Compatibility", "## Licence"):  # fmt: skip
        assert heading in readme
