"""`kerazoo demo`: the group, its plumbing, and the stereo demo."""

from __future__ import annotations

import click

from kerazoo import options
from kerazoo.app.cli._base import OrderedGroup, _emit, _run_demo, cli, import_kerazoo


@cli.group(
    cls=OrderedGroup,
    order=("stereo", "adder", "qa", "posts", "inception", "residual", "similarity", "price"),
)
def demo():
    """Run the demos: stereo matching, and the notes' 7.100-7.160.

    \b
    Examples:
        kerazoo demo stereo demos/data/left.png demos/data/right.png
        kerazoo demo posts --loss-weights age=1,income=1,gender=1
    """


@demo.command("stereo")
@click.argument("left", type=click.Path())
@click.argument("right", type=click.Path())
@click.option(
    "--weights",
    default="auto",
    show_default=True,
    help="auto or stereo (the stereo-trained weights shipped with kerazoo), "
    "imagenet (ImageNet Xception's first layers: resolve or download), "
    "none (untrained), or a PATH (.weights.h5 of the stem, or an Xception "
    ".h5).",
)
@click.option(
    "--max-disparity",
    type=int,
    default=None,
    help="Largest disparity in pixels of the left image, at least 4 [default: width/4].",
)
@click.option(
    "--out",
    default="stereo_out",
    show_default=True,
    type=click.Path(),
    help="Output folder: disparity.npy, disparity.png, summary.json (and "
    "depth.npy, points.ply with a calibration).",
)
@click.option(
    "--calib",
    type=click.Path(),
    default=None,
    help="A Middlebury calib.txt (cam0, doffs, baseline): also write depth.npy "
    "(in the baseline's unit) and points.ply (a coloured point cloud).",
)
@click.option(
    "--focal-px",
    type=float,
    default=None,
    help="Instead of --calib: the focal length in pixels (with --baseline).",
)
@click.option(
    "--baseline",
    type=float,
    default=None,
    help="Instead of --calib: the distance between the cameras (with --focal-px).",
)
@click.option(
    "--doffs",
    type=float,
    default=0.0,
    show_default=True,
    help="With --focal-px: the principal points' x-difference in pixels.",
)
@click.option(
    "--no-fill",
    is_flag=True,
    help="Leave pixels that fail the left-right check as NaN instead of "
    "filling them from the background.",
)
@click.option(
    "--save-model",
    type=click.Path(),
    default=None,
    help="Also save the stereo model (shared Xception + correlation) as .keras.",
)
@click.option(
    "--full-resolution",
    is_flag=True,
    help="Pairs above 1 megapixel are matched downscaled and the map is written "
    "at that size; with this flag, at the images' own size (more memory).",
)
@click.option(
    "--precision",
    type=click.Choice(options.STEREO_PRECISIONS),
    default="auto",
    show_default=True,
    help="The features' dtype policy; auto: mixed_bfloat16 under TensorFlow and "
    "torch on a CPU with bfloat16 instructions, float32 elsewhere.",
)
@click.option(
    "--runtime",
    type=click.Choice(["auto", "keras", "onnx"]),
    default="auto",
    show_default=True,
    help="What runs the network: onnx (ONNX Runtime, the shipped weights in "
    "float32; starts without importing Keras), keras (any weights and "
    "precision), auto (onnx where it can).",
)
@click.option(
    "--quality",
    type=click.Choice(options.STEREO_QUALITIES),
    default="fast",
    show_default=True,
    help="Which network: fast, or accurate (two more layers, each feature "
    "sees 23 px instead of 15; about 1.8x the feature time).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo_stereo(
    left,
    right,
    weights,
    max_disparity,
    out,
    calib,
    focal_px,
    baseline,
    doffs,
    no_fill,
    save_model,
    full_resolution,
    precision,
    runtime,
    quality,
    as_json,
):
    """7.160: disparity map (and depth) of a rectified stereo pair.

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

    \b
    Examples:
        kerazoo demo stereo demos/data/left.png demos/data/right.png
        kerazoo demo stereo left.png right.png --calib calib.txt --out scene
        kerazoo demo stereo left.png right.png --quality accurate
    """
    if calib is not None and (focal_px is not None or baseline is not None):
        raise click.UsageError("give --calib or --focal-px with --baseline, not both")
    if (focal_px is None) != (baseline is None):
        raise click.UsageError("--focal-px and --baseline go together")

    def run(quiet):
        from kerazoo.app.demos import stereo
        from kerazoo.stereo import COMPILING, Calibration, read_middlebury_calibration
        from kerazoo.stereo.matcher import choose_runtime

        wanted = {"auto": "stereo", "none": None}.get(weights, weights)
        chosen = choose_runtime(runtime, wanted, precision, quality)
        if chosen == "keras" or save_model:
            import_kerazoo()  # the backend's start-up log silenced

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

        return stereo.run(
            left,
            right,
            weights=weights,
            max_disparity_px=max_disparity,
            out=out,
            fill=not no_fill,
            save_model=save_model,
            progress=progress,
            warn=lambda message: click.echo(message, err=True),
            full_resolution=full_resolution,
            precision=precision,
            calibration=calibration,
            runtime=chosen,
            quality=quality,
        )

    summary = _run_demo(run, as_json, keras=False)
    d = summary["disparity"]
    text = (
        f"weights: {summary['weights']} ({summary['precision']}, {summary['runtime']})   "
        f"view similarity: {summary['similarity']:.3f}\n"
        f"disparity (px): min {d['min']}  median {d['median']}  max {d['max']}  "
        f"kept (left-right consistent, no speckle) {d['valid_fraction']:.1%}\n"
        f"wrote {', '.join(summary['outputs'].values())}"
    )
    _emit(summary, as_json, text)
