"""The command line's shared plumbing: the `cli` group, importing Keras
quietly, errors as one line, interrupts, and `main`.

Library errors (`kerazoo.errors.KerazooError`) become one line and exit
code 2; a `ParameterError` is reported under the flag that set its
parameter (`FLAGS`), its wording the library's own.
"""

from __future__ import annotations

import json
import os
import sys

import click

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
FLAGS = {
    "max_disparity_px": "--max-disparity",
    "retrain": "--retrain",
    "input_shapes": "--input-shape",
    "path": "OUT",
}


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
        os.environ["XLA_FLAGS"] = (
            os.environ.get("XLA_FLAGS", "")
            + f" --xla_force_host_platform_device_count={int(devices)}"
        )
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
            raise UserError(
                f"cannot start Keras with KERAS_BACKEND={backend}: "
                f"{_first_line(e)}{_backend_hint(backend, e)}"
            ) from None
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
        return UserError(f"{flag(error.param)}: {error.problem}")
    if isinstance(error, OSError):
        where = error.filename if error.filename is not None else "a file"
        return UserError(f"{where}: {error.strerror or error}")
    return UserError(" ".join(str(error).split()))


def _stderr_line(prefix):
    return lambda line: click.echo(f"kerazoo {prefix}: {line}", err=True)


def _emit(data, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text)


def _run_demo(fn, as_json, keras=True):
    """Runs `fn(quiet)`: bad input -> one line and exit 2; --json keeps stdout
    pure JSON. With `keras` False, `fn` imports Keras itself if it needs it
    (`import_kerazoo`)."""
    import contextlib

    if keras:
        import_kerazoo()
    from kerazoo.errors import KerazooError

    redirect = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
    try:
        with redirect:
            return fn(as_json)
    except (KerazooError, OSError) as e:
        raise _user_error(e) from None


def _show(summary, as_json, lines):
    _emit(summary, as_json, "\n".join(lines))


class OrderedGroup(click.Group):
    """A group that lists its commands in `order` (the rest after them, by
    name), not alphabetically: the stereo demo first."""

    def __init__(self, *args, order=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.order = tuple(order)

    def list_commands(self, ctx):
        rank = {name: i for i, name in enumerate(self.order)}
        return sorted(self.commands, key=lambda name: (rank.get(name, len(rank)), name))


@click.group(
    cls=OrderedGroup,
    order=("demo", "list", "weights", "export"),
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(_version(), "--version", prog_name="kerazoo")
def cli():
    """kerazoo: Keras 3 layers and demos for models beyond Sequential.

    Multi-input and multi-output models, Inception and residual blocks,
    shared weights, and whole models reused as layers: the Keras functional
    API of Deep Learning with Python, section 7.1. Start with the stereo
    demo, on the pair that ships in the repository:

    \b
        kerazoo demo stereo demos/data/left.png demos/data/right.png
    """


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
    import warnings

    signal.signal(signal.SIGINT, _interrupted)
    # A library warning is one line on stderr, not a file path and a source line.
    warnings.showwarning = lambda message, *args, **kwargs: click.echo(
        f"kerazoo: warning: {message}", err=True
    )
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
