"""The command line: instant --help, one registry listing, clean errors."""

import json
import subprocess
import sys

from click.testing import CliRunner

import kerazoo
import kerazoo_cli

HEAVY = ("keras", "tensorflow", "jax", "kerazoo")


def test_help_and_version_import_no_backend():
    script = (
        "import sys, kerazoo_cli\n"
        "for args in (['--help'], ['--version'], ['list', '--help']):\n"
        "    try:\n"
        "        kerazoo_cli.main(args)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, e.code\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "Usage: kerazoo" in result.stdout
    assert kerazoo.__version__ in result.stdout


def test_list_shows_the_registry():
    result = CliRunner().invoke(kerazoo_cli.cli, ["list", "--json"])
    assert result.exit_code == 0, result.output
    listed = {e["name"]: e for e in json.loads(result.output)}
    for entry in kerazoo.list_entries():
        assert listed[entry.name]["kind"] == entry.kind
    assert listed["StereoXception"]["section"] == "7.160"
    table = CliRunner().invoke(kerazoo_cli.cli, ["list", "--kind", "layer"])
    assert table.exit_code == 0 and "InceptionBlock" in table.output


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(kerazoo_cli.cli, ["nope"])
    assert result.exit_code == 2
