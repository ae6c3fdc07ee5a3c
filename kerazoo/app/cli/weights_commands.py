"""`kerazoo weights`: list, fetch, verify and import weight files."""

from __future__ import annotations

import os
import sys

import click

from kerazoo.app.cli._base import _emit, _user_error, cli, import_kerazoo


@cli.group()
def weights():
    """Pretrained weights: list, fetch, verify, import.

    Files are looked up in $KERAZOO_WEIGHTS, the package's weights/ folder and
    the Keras cache ($KERAS_HOME/models, else ~/.keras/models), and verified
    against the manifest's hash before use.
    """


def _weights_call(fn, as_json=False, keras=False):
    """Runs `fn(kerazoo.weights)`; with --json, what it prints (a download's
    progress) goes to stderr so that stdout is pure JSON. Only a download
    needs Keras (`keras=True`): listing, verifying and importing files start
    at once."""
    import contextlib

    from kerazoo import weights as weights_lib
    from kerazoo.errors import KerazooError

    if keras:
        import_kerazoo()
    redirect = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    try:
        with redirect:
            return fn(weights_lib)
    except (KerazooError, OSError) as e:
        raise _user_error(e) from None


@weights.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def weights_list(as_json):
    """Known files: architecture, present or not, where, verified."""
    rows = _weights_call(lambda w: w.status())
    lines = []
    for r in rows:
        state = (
            ("verified" if r["verified"] else f"INVALID: {r['error']}")
            if r["present"]
            else "missing"
        )
        lines.append(f"{r['name']:<22} {state:<9} {r['path'] or ''}\n    {r['architecture']}")
    _emit(rows, as_json, "\n".join(lines))


@weights.command("fetch")
@click.argument("name")
@click.option(
    "--dir",
    "target_dir",
    type=click.Path(),
    default=None,
    help="Target directory (default: the Keras cache).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def weights_fetch(name, target_dir, as_json):
    """Download NAME, verify its hash, then rename it into place."""
    path = _weights_call(lambda w: w.fetch(name, target_dir), as_json, keras=True)
    _emit(
        {"name": name, "path": str(path), "verified": True}, as_json, f"{name}: {path} (verified)"
    )


@weights.command("verify")
@click.argument("target", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def weights_verify(target, as_json):
    """Verify TARGET (a name or a path), or every file present."""

    def run(w):
        if target is None:
            rows = [r for r in w.status() if r["present"]]
            bad = [r for r in rows if not r["verified"]]
            if bad:
                raise w.WeightsVerificationError(bad[0]["error"])
            return rows
        if os.path.isdir(target):
            raise w.WeightsNotFoundError(
                f"{target} is a folder: pass a weights file or a name (see `kerazoo weights list`)"
            )
        if os.path.exists(target):
            return [w.verify(target, w.identify(target))]
        found = w.find(target)
        if found is None:
            w.entry(target)  # unknown name -> its own error
            raise w.WeightsNotFoundError(
                f"{target} is not present; run `kerazoo weights fetch {target}`"
            )
        return [w.verify(found[1], target)]

    rows = _weights_call(run)
    _emit(
        rows,
        as_json,
        "\n".join(f"{r.get('name')}: {r['path']} verified" for r in rows)
        or "no weight files present",
    )


@weights.command("import")
@click.argument("path", type=click.Path())
@click.option("--name", default=None, help="Manifest name (default: found by hash).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def weights_import(path, name, as_json):
    """Verify a file fetched elsewhere and copy it into the Keras cache."""
    final = _weights_call(lambda w: w.import_file(path, name))
    _emit({"path": str(final), "verified": True}, as_json, f"imported: {final} (verified)")
