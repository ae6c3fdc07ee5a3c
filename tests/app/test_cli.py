"""The command line: instant --help (script, `python -m kerazoo`), the
listing with its filters, parameters reported as flags, clean errors."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import kerazoo

from conftest import BACKEND, assert_one_line_error, cli_json, run_cli

HEAVY = ("keras", "tensorflow", "jax", "torch", "kerazoo.layers", "kerazoo.app.demos")


@pytest.mark.slow
def test_help_and_version_import_no_backend():
    script = (
        "import sys\n"
        "from kerazoo.app.cli import main\n"
        "for args in (['--help'], ['--version'], ['list', '--help'], ['demo', '--help'],\n"
        "             ['demo', 'stereo', '--help'], ['demo', 'similarity', '--help']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, e.code\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "Usage: kerazoo" in result.stdout and kerazoo.__version__ in result.stdout
    # The choices come from the library's lists, not copies.
    assert "abs_diff|concat|product|cosine" in result.stdout.replace(
        "concat|abs_diff", "abs_diff|concat"
    )


@pytest.mark.slow
@pytest.mark.parametrize("command", [["kerazoo"], [sys.executable, "-m", "kerazoo"]])
def test_console_script_and_python_m(command):
    if command == ["kerazoo"] and shutil.which("kerazoo") is None:
        pytest.skip("the console script is not installed in this environment")
    result = subprocess.run(command + ["--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and kerazoo.__version__ in result.stdout


def test_list_shows_the_registry_and_the_demos():
    listed = {e["name"]: e for e in cli_json("list")}
    for entry in kerazoo.list_entries():
        assert listed[entry.name]["kind"] == entry.kind
    assert listed["stereo"]["kind"] == "demo" and "7.160" in listed["stereo"]["summary"]
    assert listed["xception"]["weights"][0]["name"] == "imagenet"
    table = run_cli("list", "--kind", "layer")
    assert (
        table.exit_code == 0 and "InceptionBlock" in table.output and "stereo" not in table.output
    )


def test_list_filters_like_timm():
    assert [e["name"] for e in cli_json("list", "*ception*")] == [
        "InceptionBlock",
        "StereoXception",
        "inception_v3",
        "stereo_xception_stem",
        "xception",
        "inception",
    ]
    assert [e["name"] for e in cli_json("list", "--pretrained")] == [
        "inception_v3",
        "stereo_xception_stem",
        "xception",
    ]
    assert cli_json("list", "nothing-like-this") == []


def test_list_pretrained_says_what_ships_and_what_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))  # no ImageNet file here
    monkeypatch.delenv("KERAZOO_WEIGHTS", raising=False)
    listed = {e["name"]: e for e in cli_json("list", "--pretrained")}
    stem = listed["stereo_xception_stem"]["weights"][0]
    assert stem["name"] == "stereo" and stem["files"]["notop"]["availability"] == "shipped"
    assert len(stem["files"]["notop"]["hash"]) == 64  # sha256
    imagenet = listed["xception"]["weights"][0]["files"]
    assert {f["availability"] for f in imagenet.values()} == {"download"}
    table = run_cli("list", "--pretrained").output
    assert "[weights: stereo (shipped)]" in table and "[weights: imagenet (download)]" in table


def test_unknown_command_is_a_usage_error():
    assert run_cli("nope").exit_code == 2


def test_parameter_errors_name_the_flag():
    result = run_cli("demo", "posts", "--loss-weights", "age=-1")
    assert_one_line_error(result, "--loss-weights: age must be a non-negative number")
    # The strategy of the other backend is refused before any training.
    other = "mirrored" if BACKEND == "jax" else "data-parallel"
    assert_one_line_error(
        run_cli("demo", "adder", "--retrain", "--strategy", other), f"--strategy: '{other}' "
    )


def test_library_errors_are_public_value_errors():
    from kerazoo import errors

    error = errors.ParameterError("max_disparity_px", "must be positive, received 0")
    assert isinstance(error, ValueError) and error.param == "max_disparity_px"
    assert str(error) == "`max_disparity_px` must be positive, received 0"
    assert json.dumps(str(error))


@pytest.mark.parametrize(
    "args, code",
    [
        (["demo", "stereo", "missing-left.png", "missing-right.png"], 2),
        (["no-such-command"], 2),
        (["--version"], 0),
    ],
)
def test_main_exits_with_the_commands_code(args, code, capsys):
    """The console script's own entry point, not click's runner: bad input is
    exit 2 with one line, never 1 and never a traceback."""
    from kerazoo.app.cli import main

    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 2 and args[0] == "demo":
        assert err.strip().splitlines()[-1] == ("kerazoo: error: missing-left.png: no such file")


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend, message",
    [
        ("bogus", "cannot start Keras with KERAS_BACKEND=bogus"),
        ("torch", "cannot start Keras with KERAS_BACKEND=torch"),
    ],
)
def test_a_backend_that_cannot_start_is_one_line(backend, message, tmp_path):
    """A backend that is not valid, or not installed (torch hidden from this
    process), is one line and exit 2, not Keras's traceback."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "torch.py").write_text("raise ImportError(\"No module named 'torch'\")\n")
    env = {
        **__import__("os").environ,
        "KERAS_BACKEND": backend,
        "PYTHONPATH": str(hide) if backend == "torch" else "",
    }
    # A command that needs Keras (`list` answers without it).
    data = Path(__file__).resolve().parents[2] / "demos" / "data"
    command = ["demo", "stereo", data / "left.png", data / "right.png", "--runtime", "keras"]
    result = subprocess.run(
        [sys.executable, "-m", "kerazoo", *map(str, command), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"kerazoo: error: {message}"), lines


def _all_commands(group, prefix=()):
    import click

    for name in group.list_commands(None):
        command = group.commands[name]
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from _all_commands(command, prefix + (name,))


def test_help_lists_stereo_first_with_examples_and_cuts_nothing():
    from kerazoo.app.cli import cli

    top = run_cli("--help").output
    assert "kerazoo demo stereo demos/data/left.png demos/data/right.png" in top
    assert top.split("Commands:")[1].split()[0] == "demo"
    demos = run_cli("demo", "--help").output
    assert demos.split("Commands:")[1].split()[0] == "stereo"
    for path, _command in _all_commands(cli):
        text = run_cli(*path, "--help").output
        body = text.split("\n", 1)[1]  # the usage line's "[ARGS]..." is click's syntax
        assert "..." not in body, (path, text)
        if path[0] == "demo" and len(path) > 1:
            assert "Example" in text, path
