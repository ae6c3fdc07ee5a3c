"""The `kerazoo` command line (also `python -m kerazoo`).

Nothing heavy is imported until a command runs (`import kerazoo` itself is
light: it registers its layers once Keras is imported), so `kerazoo --help`
and `kerazoo --version` answer at once. Library errors
(`kerazoo.errors.KerazooError`) become one line and exit code 2; a
`ParameterError` is reported under the flag that set the parameter.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import sys

import click

from kerazoo import options, registry

# The demos, for `kerazoo list` (the registry holds what models are built
# from; the demos are this application's own).
DEMOS = {
    "adder": ("7.110", "functional API: a dense model learns to add 64 numbers"),
    "qa": ("7.120", "two inputs (text, question), one softmax answer"),
    "posts": ("7.130", "one base, three heads: age (mse), income (softmax), gender (sigmoid)"),
    "inception": ("7.140", "Inception modules: parameter counts; top-5 ImageNet labels"),
    "residual": ("7.140", "residual connections: a small kerazoo ResNet, Xception's 12"),
    "similarity": ("7.150", "the shared LSTM: same digit or not"),
    "stereo": ("7.160", "one Xception shared by two cameras: disparity map, view similarity"),
    "price": ("7.100/7.120", "metadata + description + photo -> price"),
}
# Python parameter -> the flag that sets it, where the names differ.
FLAGS = {"max_disparity_px": "--max-disparity", "retrain": "--retrain",
         "input_shapes": "--input-shape", "path": "OUT"}


def _version() -> str:
    from kerazoo._version import __version__  # plain data: imports nothing

    return __version__


def import_kerazoo():
    """Imports kerazoo (and so Keras and its backend) with the backend's C++
    start-up log silenced: TensorFlow writes it to file descriptor 2 before its
    log level can be set, and it would bury a command's one-line result. What
    it wrote is shown if the import fails."""
    import tempfile

    if "keras" in sys.modules:
        return sys.modules["kerazoo"]

    # 3: also the C++ "E0000" lines TensorFlow prints for harmless events (no
    # CUDA driver, oneDNN falling back for bool tensors), which bury one-line results.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # KERAZOO_CPU_DEVICES=N splits the CPU into N devices, to try --strategy on
    # one machine: JAX reads its flag at import, TensorFlow is told after.
    devices = os.environ.get("KERAZOO_CPU_DEVICES")
    if devices:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={int(devices)}")
    global _REAL_STDERR
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        _REAL_STDERR = saved  # where an interrupt's line still reaches the user
        try:
            import keras

            import kerazoo

            if keras.backend.backend() == "tensorflow":
                if devices:
                    kerazoo.distribute.configure_cpu_devices(int(devices))
                # Device discovery logs (CUDA probing) on first use: do it now.
                import tensorflow as tf

                tf.config.list_physical_devices()
        except (ImportError, ValueError, RuntimeError) as e:
            # A backend that is not installed, not valid or broken: one line.
            raise UserError(f"cannot start Keras with KERAS_BACKEND={backend}: "
                            f"{_first_line(e)}{_backend_hint(backend, e)}") from None
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            _REAL_STDERR = None
            os.dup2(saved, 2)
            os.close(saved)
    return kerazoo


# The real stderr while import_kerazoo sends fd 2 to a log.
_REAL_STDERR = None


def _first_line(error):
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__


def _backend_hint(backend, error):
    if backend not in ("tensorflow", "jax", "torch"):
        return " (use tensorflow, jax or torch)"
    if isinstance(error, ImportError):
        package = {"jax": "'kerazoo[jax]'"}.get(backend, backend)
        return f" (pip install {package}, or choose another KERAS_BACKEND)"
    return ""


class UserError(click.ClickException):
    """One clear line on stderr and exit code 2: for bad input, never a traceback."""

    exit_code = 2

    def show(self, file=None):
        click.echo(f"kerazoo: error: {self.format_message()}", err=True, file=file)


def _user_error(error) -> UserError:
    """A library error, or the OS refusing a file, as the command line says
    it: one line, parameters as flags."""
    from kerazoo.errors import ParameterError

    def flag(param):
        return FLAGS.get(param, "--" + param.replace("_", "-"))

    if isinstance(error, ParameterError):
        # Other parameters the problem names, `like_this`, are flags here too.
        problem = re.sub(r"`([a-z_]+)`", lambda m: flag(m.group(1)), error.problem)
        return UserError(f"{flag(error.param)}: {problem}")
    if isinstance(error, OSError):
        where = error.filename if error.filename is not None else "a file"
        return UserError(f"{where}: {error.strerror or error}")
    # Parameters a library message names, `like_this`, that the CLI sets by flag.
    message = re.sub(r"`([a-z_]+)`", lambda m: FLAGS.get(m.group(1), m.group(0)), str(error))
    return UserError(" ".join(message.split()))


def _stderr_line(prefix):
    return lambda line: click.echo(f"kerazoo {prefix}: {line}", err=True)


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
@click.argument("pattern", required=False)
@click.option("--kind", type=click.Choice([*registry.KINDS, "demo"]), default=None,
              help="Only entries of this kind.")
@click.option("--pretrained", is_flag=True, help="Only backbones with pretrained weights.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(pattern, kind, pretrained, as_json):
    """List kerazoo's layers, backbones and demos; PATTERN filters names
    (shell-style: '*xception*')."""
    import_kerazoo()
    entries = []
    if kind != "demo":
        entries = [e.as_dict() for e in registry.list_entries(kind, pretrained=pretrained)]
    if kind in (None, "demo") and not pretrained:
        entries += [{"name": name, "kind": "demo", "summary": f"{section}: {summary}",
                     "weights": []} for name, (section, summary) in DEMOS.items()]
    if pattern:
        entries = [e for e in entries if fnmatch.fnmatch(e["name"], pattern)]
    width = max((len(e["name"]) for e in entries), default=4)

    def weights_note(entry):
        names = [f"{w['name']} ({', '.join(sorted({f['availability'] for f in w['files'].values()}))})"
                 for w in entry["weights"]]
        return f"  [weights: {', '.join(names)}]" if names else ""

    lines = [f"{e['kind']:<9} {e['name']:<{width}}  {e['summary']}{weights_note(e)}"
             for e in entries]
    _emit(entries, as_json, "\n".join(lines))


@cli.group()
def weights():
    """Pretrained weight files: list, fetch, verify, import.

    Files are looked up in $KERAZOO_WEIGHTS, the package's weights/ folder and
    the Keras cache ($KERAS_HOME/models, else ~/.keras/models), and verified
    against the manifest's hash before use.
    """


def _weights_call(fn, as_json=False):
    """Runs `fn(kerazoo.weights)`; with --json, what it prints (a download's
    progress) goes to stderr so that stdout is pure JSON."""
    import contextlib

    kerazoo = import_kerazoo()
    redirect = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    try:
        with redirect:
            return fn(kerazoo.weights)
    except (kerazoo.errors.KerazooError, OSError) as e:
        raise _user_error(e) from None


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
@click.option("--dir", "target_dir", type=click.Path(), default=None,
              help="Target directory (default: the Keras cache).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def weights_fetch(name, target_dir, as_json):
    """Download NAME, verify its hash, then rename it into place."""
    path = _weights_call(lambda w: w.fetch(name, target_dir), as_json)
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
        if os.path.isdir(target):
            raise w.WeightsNotFoundError(f"{target} is a folder: pass a weights file or a "
                                         "name (see `kerazoo weights list`)")
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
@click.argument("path", type=click.Path())
@click.option("--name", default=None, help="Manifest name (default: found by hash).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def weights_import(path, name, as_json):
    """Verify a file fetched elsewhere and copy it into the Keras cache."""
    final = _weights_call(lambda w: w.import_file(path, name))
    _emit({"path": str(final), "verified": True}, as_json, f"imported: {final} (verified)")


@cli.group()
def demo():
    """Runnable demos of the chapter's architectures (see `kerazoo list --kind demo`)."""


def _run_demo(fn, as_json):
    """Runs `fn(quiet)`: bad input -> one line and exit 2; --json keeps stdout pure JSON."""
    import contextlib

    import_kerazoo()
    from kerazoo.errors import KerazooError

    redirect = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    try:
        with redirect:
            return fn(as_json)
    except (KerazooError, OSError) as e:
        raise _user_error(e) from None


@demo.command("stereo")
@click.argument("left", type=click.Path())
@click.argument("right", type=click.Path())
@click.option("--weights", default="auto", show_default=True,
              help="auto or stereo (the stereo-trained weights shipped with kerazoo), "
                   "imagenet (ImageNet Xception's first layers: resolve or download), "
                   "none (untrained), or a PATH (.weights.h5 of the stem, or an Xception "
                   ".h5).")
@click.option("--max-disparity", type=int, default=None,
              help="Largest disparity in pixels of the left image, at least 4 "
                   "[default: width/4].")
@click.option("--out", default="stereo_out", show_default=True, type=click.Path(),
              help="Output folder: disparity.npy, disparity.png, summary.json (and "
                   "depth.npy, points.ply with a calibration).")
@click.option("--calib", type=click.Path(), default=None,
              help="A Middlebury calib.txt (cam0, doffs, baseline): also write depth.npy "
                   "(in the baseline's unit) and points.ply (a coloured point cloud).")
@click.option("--focal-px", type=float, default=None,
              help="Instead of --calib: the focal length in pixels (with --baseline).")
@click.option("--baseline", type=float, default=None,
              help="Instead of --calib: the distance between the cameras (with --focal-px).")
@click.option("--doffs", type=float, default=0.0, show_default=True,
              help="With --focal-px: the principal points' x-difference in pixels.")
@click.option("--no-fill", is_flag=True,
              help="Leave pixels that fail the left-right check as NaN instead of "
                   "filling them from the background.")
@click.option("--save-model", type=click.Path(), default=None,
              help="Also save the stereo model (shared Xception + correlation) as .keras.")
@click.option("--full-resolution", is_flag=True,
              help="Pairs above 1 megapixel are matched downscaled and the map is written "
                   "at that size; with this flag, at the images' own size (more memory).")
@click.option("--precision", type=click.Choice(options.STEREO_PRECISIONS),
              default="auto", show_default=True,
              help="The features' dtype policy; auto: mixed_bfloat16 under TensorFlow and "
                   "torch on a CPU with bfloat16 instructions, float32 elsewhere.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo_stereo(left, right, weights, max_disparity, out, calib, focal_px, baseline, doffs,
                no_fill, save_model, full_resolution, precision, as_json):
    """Disparity map (and depth) of a rectified stereo pair (7.160).

    The pair must be rectified: a scene point lies on the same row in both
    views. LEFT is the left camera's view, the one in which a scene point
    appears further right; a pair that looks swapped gets a warning. EXIF
    orientation is applied. One Xception stem is shared by both views
    ("models as layers"), with stereo-trained weights: its features, at
    every pixel, are correlated along each row, aggregated semi-globally,
    checked left-right, and holes are filled from the background. Writes
    disparity.npy (float32, pixels of the left image, NaN = no estimate),
    disparity.png and summary.json; with --calib (or --focal-px and
    --baseline) also depth.npy and points.ply. The same matcher in Python:
    kerazoo.stereo.StereoMatcher.

    Example: kerazoo demo stereo demos/data/left.png demos/data/right.png
    """
    if calib is not None and (focal_px is not None or baseline is not None):
        raise click.UsageError("give --calib or --focal-px with --baseline, not both")
    if (focal_px is None) != (baseline is None):
        raise click.UsageError("--focal-px and --baseline go together")

    def run(quiet):
        from kerazoo.app.demos import stereo
        from kerazoo.stereo import COMPILING, Calibration, read_middlebury_calibration

        calibration = None
        if calib is not None:
            calibration = read_middlebury_calibration(calib)
        elif focal_px is not None:
            calibration = Calibration(focal_px, baseline, doffs)

        def progress(stage, seconds):
            if quiet:
                return
            if stage == COMPILING:
                click.echo(f"kerazoo stereo: {COMPILING}...", err=True)
            elif seconds is not None:
                click.echo(f"kerazoo stereo: {stage} {seconds:.2f} s", err=True)

        return stereo.run(left, right, weights=weights, max_disparity_px=max_disparity, out=out,
                          fill=not no_fill, save_model=save_model, progress=progress,
                          warn=lambda message: click.echo(message, err=True),
                          full_resolution=full_resolution, precision=precision,
                          calibration=calibration)

    summary = _run_demo(run, as_json)
    d = summary["disparity"]
    text = (f"weights: {summary['weights']} ({summary['precision']})   "
            f"view similarity: {summary['similarity']:.3f}\n"
            f"disparity (px): min {d['min']}  median {d['median']}  max {d['max']}  "
            f"kept (left-right consistent, no speckle) {d['valid_fraction']:.1%}\n"
            f"wrote {', '.join(summary['outputs'].values())}")
    _emit(summary, as_json, text)


STRATEGY_HELP = ("Train data-parallel on this machine's devices: mirrored "
                 "(tf.distribute, TensorFlow) or data-parallel (keras.distribution, JAX).")


def _run_chapter(name, as_json, **kwargs):
    def run(quiet):
        from kerazoo.app.demos import chapter

        return chapter.run(name, quiet=quiet, **kwargs)[0]

    return _run_demo(run, as_json)


def _training_options(epochs):
    def decorate(fn):
        fn = click.option("--strategy", type=click.Choice(options.STRATEGIES),
                          default="none", show_default=True, help=STRATEGY_HELP)(fn)
        fn = click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")(fn)
        fn = click.option("--plot", type=click.Path(), default=None,
                          help="Write the training curves to this PNG (with --retrain).")(fn)
        fn = click.option("--epochs", type=click.IntRange(1), default=None,
                          help=f"Training epochs (with --retrain) [default: {epochs}].")(fn)
        fn = click.option("--retrain", is_flag=True,
                          help="Train anew instead of loading the shipped weights.")(fn)
        return fn
    return decorate


def _show(summary, as_json, lines):
    _emit(summary, as_json, "\n".join(lines))


@demo.command("adder")
@_training_options(30)
def demo_adder(strategy, retrain, epochs, plot, as_json):
    """7.110: a functional-API model learns to add 64 numbers.

    Reports the test MAE next to the chapter's common-sense baseline (64
    uniform numbers sum to about 32: MAE ~1.86).
    """
    s = _run_chapter("adder", as_json, retrain=retrain, epochs=epochs, plot=plot,
                     strategy=strategy)
    _show(s, as_json, [f"adder ({s['params']} params, weights: {s['weights']})",
                       f"test MAE {s['test_mae']}   common-sense baseline MAE {s['baseline_mae']}"])


@demo.command("qa")
@_training_options(12)
def demo_qa(strategy, retrain, epochs, plot, as_json):
    """7.120: a two-input model (text + question) answers with one word.

    The text mentions a colour, an animal, a city and a number among filler
    words; the question names one topic; the answer is the text's value of
    it. Neither input alone suffices: reported next to the best rules that
    ignore the question or the text, and with the questions shuffled.
    """
    s = _run_chapter("qa", as_json, retrain=retrain, epochs=epochs, plot=plot,
                     strategy=strategy)
    _show(s, as_json, [f"question answering ({s['params']} params, weights: {s['weights']})",
                       f"test accuracy {s['test_accuracy']:.1%}   question-blind rule "
                       f"{s['question_blind_accuracy']:.1%}   text-blind rule "
                       f"{s['text_blind_accuracy']:.1%}",
                       f"with the questions shuffled: {s['shuffled_questions_accuracy']:.1%}"])


@demo.command("posts")
@_training_options(8)
@click.option("--loss-weights", default=None,
              help="NAME=W,... for age, income, gender [default: age=0.01,income=1,gender=1]; "
                   "any other weighting trains anew.")
def demo_posts(strategy, retrain, epochs, plot, as_json, loss_weights):
    """7.130: one text base, three heads: age (mse), income (softmax), gender (sigmoid).

    The losses are summed with weights; without them the age MSE (in years
    squared) drowns the other two: try --loss-weights age=1,income=1,gender=1.
    """
    from_cli = {} if loss_weights is None else {"loss_weights": loss_weights}
    s = _run_chapter("posts", as_json, retrain=retrain, epochs=epochs, plot=plot,
                     strategy=strategy, **from_cli)
    _show(s, as_json, [
        f"posts ({s['params']} params, weights: {s['weights']}, loss weights {s['loss_weights']})",
        f"age MAE {s['age_mae']} (median baseline {s['age_baseline_mae']})",
        f"income accuracy {s['income_accuracy']:.1%} (majority {s['income_baseline_accuracy']:.1%})",
        f"gender accuracy {s['gender_accuracy']:.1%} (majority {s['gender_baseline_accuracy']:.1%})"])


@demo.command("similarity")
@_training_options(15)
@click.option("--merge", type=click.Choice(options.SIAMESE_MERGES),
              default="abs_diff", show_default=True,
              help="How the shared LSTM's two encodings meet (concat is the chapter's; "
                   "euclidean outputs their distance, trained with a contrastive loss; "
                   "anything but abs_diff trains anew).")
def demo_similarity(strategy, retrain, epochs, plot, as_json, merge):
    """7.150: the shared LSTM judges whether two digits are the same.

    scikit-learn's bundled 8x8 digits, read row by row as 8-step sequences,
    in pairs; accuracy on pairs of digits the model never saw (baseline 50%).
    """
    s = _run_chapter("similarity", as_json, retrain=retrain, epochs=epochs, plot=plot,
                     strategy=strategy, merge=merge)
    rule = (f", same below distance {s['distance_threshold']}"
            if "distance_threshold" in s else "")
    _show(s, as_json, [f"shared LSTM, merge={s['merge']} ({s['params']} params, "
                       f"weights: {s['weights']}{rule})",
                       f"held-out pair accuracy {s['test_accuracy']:.1%} (raw-pixel L1 "
                       f"threshold {s['pixel_l1_accuracy']:.1%}, chance 50%); "
                       f"same answer with inputs swapped: {s['order_agreement']:.1%}"])


@demo.command("inception")
@click.option("--image", type=click.Path(), default=None,
              help="With ImageNet weights: print InceptionV3's top-5 labels for it.")
@click.option("--weights", type=click.Choice(["auto", "imagenet", "none"]), default="auto",
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def demo_inception(image, weights, as_json):
    """7.140: Inception modules: parameter counts, a small kerazoo model, top-5 labels."""
    def run(quiet):
        from kerazoo.app.demos import chapter

        return chapter.run_inception(image=image, weights=weights, summary_print=None if quiet
                                     else (lambda line, **_: click.echo(line)))

    s = _run_demo(run, as_json)
    lines = [f"InceptionBlock(128, strides=2) on 3 channels: {s['chapter_block_params']:,} params",
             f"small kerazoo Inception model: {s['small_inception']['total']:,} params",
             f"InceptionV3: {s['inception_v3']['total']:,} params"]
    if s.get("top5"):
        lines += [f"  {t['score']:.3f} {t['label']} ({t['wnid']})" for t in s["top5"]]
    if s.get("note"):
        lines.append(s["note"])
    _show(s, as_json, lines)


@demo.command("residual")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def demo_residual(as_json):
    """7.140: residual connections: a small kerazoo ResNet, and Xception's."""
    def run(quiet):
        from kerazoo.app.demos import chapter

        return chapter.run_residual(summary_print=None if quiet
                                    else (lambda line, **_: click.echo(line)))

    s = _run_demo(run, as_json)
    _show(s, as_json, [f"small kerazoo residual model: {s['small_residual']['total']:,} params",
                       f"Xception: {s['xception']['total']:,} params, "
                       f"{s['xception_residual_connections']} residual connections"])


@demo.group("price")
def demo_price():
    """7.100/7.120: clothing prices from metadata, a description and a photo."""


@demo_price.command("train")
@click.option("--data", type=click.Path(), default=None,
              help="CSV with brand, age_years, condition, description, image, price.")
@click.option("--images", type=click.Path(), default=None,
              help="Folder of the images [default: images/ beside the CSV].")
@click.option("--synthetic", type=click.IntRange(5), default=None,
              help="Generate N items (reproducible) into --synthetic-dir and train on them.")
@click.option("--synthetic-dir", type=click.Path(), default="price_data",
              show_default=True)
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True)
@click.option("--out", type=click.Path(), default="price_model.keras",
              show_default=True, help="Where to save the trained model.")
@click.option("--weights", default="auto", show_default=True,
              help="InceptionV3 weights: auto, imagenet, none or a PATH.")
@click.option("--plot", type=click.Path(), default=None,
              help="Write the training curves to this PNG.")
@click.option("--strategy", type=click.Choice(options.STRATEGIES),
              default="none", show_default=True, help=STRATEGY_HELP)
@click.option("--ablation", is_flag=True,
              help="Also train without each input (metadata, description, photo) and "
                   "report those validation MAEs: what each input adds.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def demo_price_train(data, images, synthetic, synthetic_dir, epochs, out, weights, plot,
                     strategy, ablation, as_json):
    """Train the multi-input price model; compare with the median-price baseline.

    Bad rows (missing image, non-numeric age, empty description, negative
    price) are reported with their line numbers and skipped.
    """
    if (data is None) == (synthetic is None):
        raise UserError("give either --data ITEMS.csv or --synthetic N")

    def run(quiet):
        from kerazoo.app.demos import price

        from kerazoo.app.demos.common import check_output

        csv_path = data
        if synthetic is not None:
            check_output(synthetic_dir, "synthetic_dir", folder=True)
            check_output(out, "out")
            csv_path = price.synthetic_dataset(synthetic, synthetic_dir)
        return price.train(csv_path, images, epochs=epochs, out=out, weights=weights,
                           plot=plot, quiet=quiet, strategy=strategy,
                           report=_stderr_line("price"), ablation=ablation)

    s = _run_demo(run, as_json)
    _show(s, as_json, [f"{s['rows']} rows ({s['skipped']} skipped), {s['train']} train / "
                       f"{s['validation']} validation, image weights: {s['image_weights']}",
                       f"validation MAE {s['validation_mae']}   median-price baseline MAE "
                       f"{s['baseline_mae']}",
                       *[f"  without the {k}: {v}"
                         for k, v in s.get("validation_mae_without", {}).items()],
                       f"saved {s['model']}"])


@demo_price.command("predict")
@click.argument("model", type=click.Path())
@click.option("--brand", required=True)
@click.option("--age", type=float, required=True, help="Age in years.")
@click.option("--condition", required=True, help="new, like new, good, fair, poor")
@click.option("--description", required=True)
@click.option("--image", type=click.Path(), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def demo_price_predict(model, brand, age, condition, description, image, as_json):
    """Price one item with a saved model (works in a fresh process)."""
    def run(quiet):
        from kerazoo.app.demos import price

        return price.predict(model, brand, age, condition, description, image)

    s = _run_demo(run, as_json)
    for warning in s["warnings"]:
        click.echo(f"kerazoo price: {warning}", err=True)
    _show(s, as_json, [f"predicted price: {s['price']:.2f}"])


def _parse_shape(text):
    """"1x80x96x3" or "?x80x96x3" (free batch) -> a tuple with None."""
    try:
        return tuple(None if d in ("?", "none", "None") else int(d)
                     for d in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--input-shape: expected sizes like 1x224x224x3 (? for a free size), "
                        f"received {text!r}") from None


@cli.command("export")
@click.argument("model", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--format", "export_format", type=click.Choice(options.EXPORT_FORMATS),
              required=True, help="onnx (.onnx file), tf_saved_model (folder) or litert (.tflite).")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="1x80x96x3",
              help="Fix an input's shape (once per input, in order; ? keeps a size free). "
                   "Needed where inputs must share a size the exporter cannot know, e.g. "
                   "the two views of a stereo model (ONNX; tf_saved_model under JAX).")
@click.option("--no-check", is_flag=True,
              help="Skip running the export in its runtime against the Keras model.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def export_cmd(model, out, export_format, input_shapes, no_check, as_json):
    """Export a saved .keras MODEL to OUT for serving without Python Keras.

    The export is written beside OUT, run in its own runtime (onnxruntime,
    TensorFlow, the LiteRT interpreter) on random inputs and compared with
    the Keras model to 1e-4; only then is it renamed to OUT. Which formats
    work under which backend: see the README.
    """
    shapes = [_parse_shape(s) for s in input_shapes] or None

    def run(quiet):
        import time

        from kerazoo import export
        from kerazoo._io import load_keras_model

        start = time.perf_counter()
        report = export.export_model(load_keras_model(model), out, export_format,
                                     input_shapes=shapes, check=not no_check)
        out_path = report.pop("path")
        return {"model": model, "out": str(out_path), **report,
                "seconds": round(time.perf_counter() - start, 2)}

    s = _run_demo(run, as_json)
    check = ("not checked" if no_check else
             f"checked against the Keras model: max |difference| {s['max_abs_difference']:.2g}")
    _show(s, as_json, [f"exported {s['model']} to {s['out']} ({s['format']}, "
                       f"{s['backend']} backend, {s['seconds']} s); {check}"])


def _interrupted(signum=None, frame=None):
    """Ctrl-C: remove what was being written, say so, exit 130 at once.

    Not by unwinding a KeyboardInterrupt: raised inside a TensorFlow step it
    can crash the process ("free(): invalid next size", SIGABRT).
    """
    from kerazoo._io import remove_temporaries

    remove_temporaries()
    sys.stdout.flush()
    sys.stderr.flush()
    # While Keras is being imported, fd 2 is a log file: write past it.
    os.write(_REAL_STDERR if _REAL_STDERR is not None else 2, b"kerazoo: interrupted\n")
    os._exit(130)


def main(argv=None):
    """Console-script entry point: exit 0, 2 for bad input or usage, 130 when
    interrupted (click's own handling would say "Aborted!" and exit 1)."""
    import signal

    signal.signal(signal.SIGINT, _interrupted)
    try:
        code = cli.main(args=argv, prog_name="kerazoo", standalone_mode=False)
    except click.exceptions.Exit as e:
        code = e.exit_code
    except click.ClickException as e:
        e.show()
        code = e.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        _interrupted()
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
