"""`kerazoo export`: a saved model to ONNX, a SavedModel or LiteRT, checked."""

from __future__ import annotations

import click

from kerazoo import options
from kerazoo.app.cli._base import UserError, _run_demo, _show, cli


def _parse_shape(text):
    """ "1x80x96x3" or "?x80x96x3" (free batch) -> a tuple with None."""
    try:
        return tuple(
            None if d in ("?", "none", "None") else int(d) for d in text.lower().split("x")
        )
    except ValueError:
        raise UserError(
            f"--input-shape: expected sizes like 1x224x224x3 (? for a free size), received {text!r}"
        ) from None


@cli.command("export")
@click.argument("model", type=click.Path())
@click.argument("out", type=click.Path())
@click.option(
    "--format",
    "export_format",
    type=click.Choice(options.EXPORT_FORMATS),
    required=True,
    help="onnx (.onnx file), tf_saved_model (folder) or litert (.tflite).",
)
@click.option(
    "--input-shape",
    "input_shapes",
    multiple=True,
    metavar="1x80x96x3",
    help="Fix an input's shape (once per input, in order; ? keeps a size free). "
    "Needed where inputs must share a size the exporter cannot know, e.g. "
    "the two views of a stereo model (ONNX; tf_saved_model under JAX).",
)
@click.option(
    "--no-check",
    is_flag=True,
    help="Skip running the export in its runtime against the Keras model.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def export_cmd(model, out, export_format, input_shapes, no_check, as_json):
    """Export a saved .keras model for serving without Keras.

    The export is written beside OUT, run in its own runtime (onnxruntime,
    TensorFlow, the LiteRT interpreter) on random inputs and compared with
    the Keras model; only then is it renamed to OUT. Which formats work under
    which backend: docs/export.md.

    \b
    Examples:
        kerazoo export model.keras model.onnx --format onnx
        kerazoo export model.keras served_model --format tf_saved_model
    """
    shapes = [_parse_shape(s) for s in input_shapes] or None

    def run(quiet):
        import time

        from kerazoo import export
        from kerazoo._io import load_keras_model

        start = time.perf_counter()
        report = export.export_model(
            load_keras_model(model), out, export_format, input_shapes=shapes, check=not no_check
        )
        out_path = report.pop("path")
        return {
            "model": model,
            "out": str(out_path),
            **report,
            "seconds": round(time.perf_counter() - start, 2),
        }

    s = _run_demo(run, as_json)
    check = (
        "not checked"
        if no_check
        else f"checked against the Keras model: max |difference| {s['max_abs_difference']:.2g}"
    )
    _show(
        s,
        as_json,
        [
            f"exported {s['model']} to {s['out']} ({s['format']}, "
            f"{s['backend']} backend, {s['seconds']} s); {check}"
        ],
    )
