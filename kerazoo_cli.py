"""The `kerazoo` command line.

It lives outside the `kerazoo` package on purpose: importing `kerazoo`
registers its layers with Keras, which imports TensorFlow (seconds). Here
nothing heavy is imported until a command runs, so `kerazoo --help` and
`kerazoo --version` answer at once.
"""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata

import click


def _version() -> str:
    try:
        return metadata.version("kerazoo")
    except metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


def import_kerazoo():
    """Imports kerazoo (and so Keras and its backend) with the backend's C++
    start-up log silenced: TensorFlow writes it to file descriptor 2 before its
    log level can be set, and it would bury a command's one-line result. What
    it wrote is shown if the import fails."""
    if "kerazoo" in sys.modules:
        return sys.modules["kerazoo"]
    import tempfile

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            import kerazoo
            import keras

            if keras.backend.backend() == "tensorflow":
                # Device discovery logs (CUDA probing) on first use: do it now.
                import tensorflow as tf

                tf.config.list_physical_devices()
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return kerazoo


class UserError(click.ClickException):
    """One clear line on stderr and exit code 2: for bad input, never a traceback."""

    exit_code = 2

    def show(self, file=None):
        click.echo(f"kerazoo: error: {self.format_message()}", err=True, file=file)


def _emit(data, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", prog_name="kerazoo")
def cli():
    """kerazoo: Keras 3 layers and demos for models beyond Sequential.

    Multi-input and multi-output models, Inception and residual blocks,
    shared weights, and whole models reused as layers.
    """


@cli.command("list")
@click.option("--kind", type=click.Choice(["layer", "backbone", "demo"]), default=None,
              help="Only entries of this kind.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(kind, as_json):
    """List kerazoo's layers, backbones and demos (one registry)."""
    kerazoo = import_kerazoo()
    entries = [e.as_dict() for e in kerazoo.list_entries(kind)]
    width = max((len(e["name"]) for e in entries), default=4)
    lines = [f"{e['kind']:<9} {e['name']:<{width}}  {e['section']:<6} {e['summary']}"
             for e in entries]
    _emit(entries, as_json, "\n".join(lines))


@cli.group()
def weights():
    """Pretrained weight files: list, fetch, verify, import.

    Files are looked up in $KERAZOO_WEIGHTS, the package's weights/ folder and
    the Keras cache ($KERAS_HOME/models, else ~/.keras/models), and verified
    against the manifest's hash before use.
    """


def _weights_call(fn, *args, **kwargs):
    kerazoo = import_kerazoo()
    try:
        return fn(kerazoo.weights, *args, **kwargs)
    except kerazoo.weights.WeightsError as e:
        raise UserError(str(e)) from None


@weights.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def weights_list(as_json):
    """Known files: architecture, present or not, where, verified."""
    rows = _weights_call(lambda w: w.status())
    lines = []
    for r in rows:
        state = ("verified" if r["verified"] else f"INVALID: {r['error']}") if r["present"] \
            else "missing"
        lines.append(f"{r['name']:<22} {state:<9} {r['path'] or ''}\n    {r['architecture']}")
    _emit(rows, as_json, "\n".join(lines))


@weights.command("fetch")
@click.argument("name")
@click.option("--dir", "target_dir", type=click.Path(file_okay=False), default=None,
              help="Target directory (default: the Keras cache).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def weights_fetch(name, target_dir, as_json):
    """Download NAME, verify its hash, then rename it into place."""
    path = _weights_call(lambda w: w.fetch(name, target_dir))
    _emit({"name": name, "path": str(path), "verified": True}, as_json, f"{name}: {path} (verified)")


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
        if os.path.exists(target):
            return [w.verify(target, w.identify(target))]
        found = w.find(target)
        if found is None:
            w.entry(target)  # unknown name -> its own error
            raise w.WeightsNotFoundError(f"{target} is not present; run `kerazoo weights fetch {target}`")
        return [w.verify(found[1], target)]

    rows = _weights_call(run)
    _emit(rows, as_json, "\n".join(f"{r.get('name')}: {r['path']} verified" for r in rows)
          or "no weight files present")


@weights.command("import")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--name", default=None, help="Manifest name (default: found by hash).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def weights_import(path, name, as_json):
    """Verify a file fetched elsewhere and copy it into the Keras cache."""
    final = _weights_call(lambda w: w.import_file(path, name))
    _emit({"path": str(final), "verified": True}, as_json, f"imported: {final} (verified)")


@cli.group()
def demo():
    """Runnable demos of the chapter's architectures (see `kerazoo list --kind demo`)."""


def _run_demo(fn, as_json, **kwargs):
    """Runs a demo: bad input -> one line and exit 2; --json keeps stdout pure JSON."""
    import contextlib

    kerazoo = import_kerazoo()
    from kerazoo._io import InputError

    redirect = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    try:
        with redirect:
            return fn(kerazoo, quiet=as_json, **kwargs)
    except (InputError, kerazoo.weights.WeightsError) as e:
        raise UserError(str(e)) from None


@demo.command("stereo")
@click.argument("left", type=click.Path(dir_okay=False))
@click.argument("right", type=click.Path(dir_okay=False))
@click.option("--weights", default="auto", show_default=True,
              help="auto (ImageNet if present locally, else untrained with a warning), "
                   "imagenet (resolve or download; fail if impossible), none, or a PATH.")
@click.option("--max-disparity", type=int, default=None,
              help="Largest disparity in pixels of the left image [default: width/4].")
@click.option("--out", default="stereo_out", show_default=True, type=click.Path(file_okay=False),
              help="Output folder: disparity.npy, disparity.png, summary.json.")
@click.option("--no-fill", is_flag=True,
              help="Leave pixels that fail the left-right check as NaN instead of "
                   "filling them from the background.")
@click.option("--save-model", type=click.Path(dir_okay=False), default=None,
              help="Also save the stereo model (shared Xception + correlation) as .keras.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo_stereo(left, right, weights, max_disparity, out, no_fill, save_model, as_json):
    """Disparity map and view similarity of a rectified stereo pair (7.160).

    One Xception base is shared by the LEFT and the RIGHT view ("models as
    layers"): its stride-2 features are correlated along each row, aggregated
    semi-globally, checked left-right and refined to full resolution. Writes
    disparity.npy (float32, pixels of the left image, NaN = no estimate),
    disparity.png and summary.json.
    """
    summary = _run_demo(
        lambda kz, **kw: kz.demos.stereo.run(left, right, weights=weights,
                                             max_disparity=max_disparity, out=out,
                                             fill=not no_fill, save_model=save_model, **kw),
        as_json)
    d = summary["disparity"]
    text = (f"weights: {summary['weights']}   view similarity: {summary['similarity']:.3f}\n"
            f"disparity (px): min {d['min']}  median {d['median']}  max {d['max']}  "
            f"left-right consistent {d['valid_fraction']:.1%}\n"
            f"wrote {', '.join(summary['outputs'].values())}")
    _emit(summary, as_json, text)


def main(argv=None):
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="kerazoo", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("kerazoo: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
