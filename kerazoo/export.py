"""Export a Keras model made of kerazoo layers for serving, and prove it works.

`model.export(path, format=...)` is Keras 3's way out of Python; which formats
a backend can write, and with which extra package, differs (Keras 3.15):

| format           | TensorFlow      | JAX              | torch                  |
|------------------|-----------------|------------------|------------------------|
| `onnx`           | tf2onnx         | jax2onnx         | onnxscript             |
| `tf_saved_model` | built in        | built in (TF)    | needs torch_xla        |
| `litert`         | built in        | not supported    | needs litert-torch     |

`export_model` checks that table first (one-line `ExportError`s instead of
Keras's tracebacks), calls the model once (Keras refuses to export a model
that never ran, as a freshly loaded one is), writes into a hidden folder
beside the target, runs the export there in its own runtime (onnxruntime,
TensorFlow, the LiteRT interpreter) against the Keras outputs
(`check_exported`), and only then renames it into place: never a
half-written or wrong export where the user looks.

>>> import keras, numpy as np
>>> from kerazoo import export
>>> x_in = keras.Input((8,))
>>> model = keras.Model(x_in, keras.layers.Dense(2)(x_in))
>>> signature = export.input_signature(model)
>>> [tuple(spec.shape) for spec in signature]
[(None, 8)]
>>> [a.shape for a in export.sample_inputs(signature)]
[(2, 8)]
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np

from kerazoo._io import errors_named_for, temporary_prefix, tracked_temporary
from kerazoo.errors import ExportError, ParameterError
from kerazoo.options import EXPORT_FORMATS

SUFFIXES = {"onnx": ".onnx", "litert": ".tflite", "tf_saved_model": ""}
# (format, backend) -> the module Keras needs for it, None if built in.
REQUIRED_MODULES = {
    ("onnx", "tensorflow"): "tf2onnx",
    ("onnx", "jax"): "jax2onnx",
    ("onnx", "torch"): "onnxscript",
    ("tf_saved_model", "tensorflow"): None,
    ("tf_saved_model", "jax"): None,
    ("tf_saved_model", "torch"): "torch_xla",
    ("litert", "tensorflow"): None,
    ("litert", "torch"): "litert_torch",
}
# Where an unknown size is needed to run the model, this one: StereoXception
# needs views of at least 71 pixels.
SAMPLE_SIZE = 96
TOLERANCE = 1e-4
# The largest input the export is run and checked on (2**28 float32 is 1 GiB).
MAX_SAMPLE_VALUES = 1 << 28


def _check_format(format: str) -> None:
    if format not in EXPORT_FORMATS:
        raise ParameterError(
            "format", f"must be one of {', '.join(EXPORT_FORMATS)}, received {format!r}"
        )


def check_supported(format: str, backend: str | None = None) -> None:
    """Raises `ExportError` (one line) if `backend` cannot write `format` here."""
    import keras

    backend = backend or keras.backend.backend()
    _check_format(format)
    if (format, backend) not in REQUIRED_MODULES:
        raise ExportError(
            f"Keras cannot export {format} from the {backend} backend; "
            "run with KERAS_BACKEND=tensorflow (a .keras file loads in any backend)"
        )
    module = REQUIRED_MODULES[(format, backend)]
    if module and importlib.util.find_spec(module) is None:
        package = module.replace("_", "-")
        other = "" if backend == "tensorflow" else ", or run with KERAS_BACKEND=tensorflow"
        raise ExportError(
            f"exporting {format} from the {backend} backend needs {package}, "
            f"which is not installed (pip install {package}){other}"
        )


def input_signature(model, input_shapes=None) -> list:
    """The model's inputs as `keras.InputSpec`s, with `input_shapes` (one
    tuple per input, None for a free size) replacing the model's own."""
    import keras

    inputs = keras.tree.flatten(model.input)
    if input_shapes is None:
        input_shapes = [tuple(x.shape) for x in inputs]
    elif len(input_shapes) != len(inputs):
        raise ParameterError(
            "input_shapes",
            f"must give {len(inputs)} shape(s), one per model input, received {len(input_shapes)}",
        )
    signature = []
    for x, shape in zip(inputs, input_shapes):
        shape = tuple(shape)
        if len(shape) != len(x.shape) or any(
            own is not None and own != given for own, given in zip(x.shape, shape)
        ):
            raise ParameterError(
                "input_shapes",
                f"{shape} does not fit the model's input {x.name!r} of shape {tuple(x.shape)}",
            )
        if any(d is not None and d < 1 for d in shape):
            raise ParameterError("input_shapes", f"sizes must be positive, received {shape}")
        signature.append(keras.InputSpec(shape=shape, dtype=x.dtype))
    return signature


def sample_inputs(signature, batch: int = 2, seed: int = 0) -> list:
    """Random inputs for `signature`: small integers for integer inputs (token
    ids every vocabulary has), normal floats otherwise; a free batch size is
    `batch`, any other free size `SAMPLE_SIZE`."""
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in signature:
        shape = tuple(
            (batch if i == 0 else SAMPLE_SIZE) if d is None else d for i, d in enumerate(spec.shape)
        )
        try:
            dtype = np.dtype(spec.dtype)
        except TypeError:  # "string"
            dtype = np.dtype(object)
        values = int(np.prod(shape, dtype=np.float64))
        if values > MAX_SAMPLE_VALUES:
            raise ParameterError(
                "input_shapes",
                f"{shape} is {values:,} values per input, over the {MAX_SAMPLE_VALUES:,} an "
                "export is checked on: give smaller fixed sizes",
            )
        if dtype.kind in "iu":
            arrays.append(rng.integers(0, 8, shape).astype(dtype))
        elif dtype.kind == "f":
            arrays.append(rng.standard_normal(shape).astype(dtype))
        else:
            raise ExportError(
                f"cannot export a model with {spec.dtype} inputs (string inputs "
                "are TensorFlow-only inside the graph); preprocess outside the model"
            )
    return arrays


def _structured(model, flat):
    """`flat` (one entry per input, in `input_signature`'s order) shaped like
    the model's inputs: a tensor, a list or a dict."""
    import keras

    return keras.tree.pack_sequence_as(model.input, list(flat))


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".strip()


def export_model(model, path, format: str, input_shapes=None, check: bool = True) -> dict:
    """Exports `model` to `path` (a `.onnx` or `.tflite` file, or a SavedModel
    folder). With `check`, the export first runs in its runtime on random
    inputs and must match the model (`check_exported`); what was at `path` is
    replaced only then. Returns the path, the input shapes and the largest
    difference found (None unchecked)."""
    import keras

    _check_format(format)
    path = Path(path).absolute()  # "." has no name to stage beside
    suffix = SUFFIXES[format]
    if suffix and path.suffix != suffix:
        raise ParameterError("path", f"must end with {suffix} for {format}, received {path}")
    _check_replaceable(path, format)
    signature = input_signature(model, input_shapes)
    # After the arguments: a mistyped path or shape is worth hearing of even
    # where the exporter is not installed.
    check_supported(format)
    # A model that never ran (a loaded one) cannot be exported: run it once.
    model(_structured(model, sample_inputs(signature, batch=1)), training=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(path)
    with errors_named_for(path):
        workdir = Path(tempfile.mkdtemp(prefix=temporary_prefix(path), dir=path.parent))
    staged = workdir / (path.name or "export")
    with tracked_temporary(workdir), _cleanup(workdir):
        try:
            # One argument, shaped like the model's inputs (the exporters
            # trace model(inputs)).
            # The exporters' own deprecation notices, and the LiteRT
            # converter's C++ "Ignored output_format" lines.
            quiet = _native_stderr_silenced() if format == "litert" else contextlib.nullcontext()
            with warnings.catch_warnings(), quiet:
                warnings.simplefilter("ignore")
                model.export(
                    str(staged),
                    format=format,
                    verbose=False,
                    input_signature=[_structured(model, signature)],
                )
        except MemoryError:
            raise ExportError(f"not enough memory to export this model to {format}") from None
        except (ImportError, ValueError, TypeError, RuntimeError, NotImplementedError) as e:
            raise ExportError(
                f"Keras could not export this model to {format} under "
                f"{keras.backend.backend()}: {_first_line(e)}"
            ) from e
        except Exception as e:  # TensorFlow's own (a full disk: ResourceExhaustedError)
            if not type(e).__module__.startswith("tensorflow"):
                raise
            raise ExportError(f"writing the {format} export failed: {_first_line(e)}") from e
        difference = None
        if check:
            difference = check_exported(model, staged, format, sample_inputs(signature))
        with errors_named_for(path):
            _replace(staged, path)
    return {
        "path": path,
        "format": format,
        "backend": keras.backend.backend(),
        "inputs": [list(spec.shape) for spec in signature],
        "max_abs_difference": difference,
    }


def _remove_stale_staging(path: Path) -> None:
    """Removes the hidden staging folders a killed export to `path` left
    beside it (only folders named as this module names them)."""
    for stale in path.parent.glob(f"{temporary_prefix(path)}*"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def _cleanup(folder):
    try:
        yield
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# What a SavedModel folder holds: such a folder is an earlier export, which
# a new one may replace; any other folder is the user's, and is never touched.
SAVED_MODEL_ENTRIES = frozenset(
    {"saved_model.pb", "variables", "assets", "fingerprint.pb", "keras_metadata.pb"}
)


def _check_replaceable(path: Path, format: str) -> None:
    """Refuses, before any work, a target that is not kerazoo's to replace: a
    folder for a file format, a file for a folder format, or a folder that
    holds anything but an earlier SavedModel."""
    if not path.exists() and not path.is_symlink():
        return
    if SUFFIXES[format]:
        if path.is_dir():
            raise ParameterError("path", f"{path} is a folder; {format} exports are files")
        return
    if not path.is_dir():
        raise ParameterError("path", f"{path} is a file; a SavedModel is a folder")
    entries = {entry.name for entry in path.iterdir()}
    if entries and ("saved_model.pb" not in entries or not entries <= SAVED_MODEL_ENTRIES):
        others = sorted(entries - SAVED_MODEL_ENTRIES) or sorted(entries)
        raise ParameterError(
            "path",
            f"{path} holds other files ({', '.join(others[:3])}): "
            "give a new or empty folder, or an earlier SavedModel export",
        )


def _replace(staged: Path, path: Path) -> None:
    if staged.is_dir():
        old = None
        if path.exists():
            _check_replaceable(path, "tf_saved_model")  # again: it may have changed
            old = path.with_name(temporary_prefix(path) + "old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
        os.replace(staged, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    else:
        if path.is_dir():
            raise ExportError(f"{path} is a folder; {staged.suffix} exports are files")
        os.replace(staged, path)


def run_exported(model, path, format: str, inputs) -> list:
    """Runs `model`'s export in its own runtime on `inputs` (flat, in
    `input_signature`'s order); returns its outputs, flat, in order."""
    import keras

    path = str(path)
    if format == "onnx":
        import onnxruntime

        session_options = onnxruntime.SessionOptions()
        session_options.log_severity_level = 4  # errors come back as exceptions
        session = onnxruntime.InferenceSession(
            path, session_options, providers=["CPUExecutionProvider"]
        )
        names = [i.name for i in session.get_inputs()]
        by_name = {x.name: a for x, a in zip(keras.tree.flatten(model.input), inputs)}
        # Exporters keep the Keras input names, or number the inputs in order.
        feeds = (
            {n: by_name[n] for n in names}
            if set(names) == set(by_name)
            else dict(zip(names, inputs))
        )
        return list(session.run(None, feeds))
    if format == "tf_saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # a name: the call needs its variables alive
        outputs = loaded.serve(_structured(model, inputs))
        return [np.asarray(o) for o in tf.nest.flatten(outputs)]
    if format == "litert":
        # The runtime's C++ INFO line ("Created TensorFlow Lite XNNPACK
        # delegate") would bury the command's one-line result.
        with _native_stderr_silenced():
            interpreter = _litert_interpreter(path)
            details = interpreter.get_input_details()
            for d, x in zip(details, inputs):
                interpreter.resize_tensor_input(d["index"], x.shape)
            interpreter.allocate_tensors()
            for d, x in zip(details, inputs):
                interpreter.set_tensor(d["index"], x)
            interpreter.invoke()
        # Output tensors are listed by index, which follows the model's order.
        outs = sorted(interpreter.get_output_details(), key=lambda d: d["index"])
        return [interpreter.get_tensor(d["index"]) for d in outs]
    raise ParameterError(
        "format", f"must be one of {', '.join(EXPORT_FORMATS)}, received {format!r}"
    )


@contextlib.contextmanager
def _native_stderr_silenced():
    """File descriptor 2 to /dev/null for native code's logging; Python's
    own errors still raise."""
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _litert_interpreter(path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # TensorFlow still carries the (deprecated) interpreter
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Interpreter(model_path=path)
    except (ValueError, RuntimeError) as e:
        raise ExportError(f"the LiteRT interpreter cannot load {path}: {_first_line(e)}") from e


def check_exported(model, path, format: str, inputs, tolerance: float = TOLERANCE) -> float:
    """Runs `model` and its export on `inputs`; returns the largest absolute
    difference, raises `ExportError` if any exceeds `tolerance` (scaled by
    the output's magnitude when that is above 1)."""
    import keras

    expected = [
        keras.ops.convert_to_numpy(o)
        for o in keras.tree.flatten(model(_structured(model, inputs), training=False))
    ]
    try:
        got = run_exported(model, path, format, inputs)
    except ExportError:
        raise
    except Exception as e:  # a runtime's own error, e.g. an op LiteRT lacks
        raise ExportError(
            f"the {format} export does not run: {_first_line(e)[:200]} (inputs "
            "that must share a size? fix their shapes with `input_shapes`)"
        ) from e
    if len(got) != len(expected):
        raise ExportError(f"the {format} export has {len(got)} outputs, the model {len(expected)}")
    worst = 0.0
    for i, (e, g) in enumerate(zip(expected, got)):
        g = np.asarray(g)
        if g.shape != e.shape:
            raise ExportError(
                f"output {i} of the {format} export has shape {g.shape}, the model's {e.shape}"
            )
        diff = float(np.max(np.abs(g.astype(np.float64) - e))) if e.size else 0.0
        if not diff <= tolerance * max(1.0, float(np.max(np.abs(e))) if e.size else 1.0):
            raise ExportError(
                f"output {i} of the {format} export differs from the model's "
                f"by up to {diff:.3g} (tolerance {tolerance:g})"
            )
        worst = max(worst, diff)
    return worst
