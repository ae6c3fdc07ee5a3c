"""`kerazoo demo price train|predict`: metadata, description and photo -> price."""

from __future__ import annotations

import click

from kerazoo import options
from kerazoo.app.cli._base import UserError, _run_demo, _show, _stderr_line
from kerazoo.app.cli.chapter_commands import STRATEGY_HELP
from kerazoo.app.cli.demo_commands import demo


@demo.group("price")
def demo_price():
    """7.100, 7.120: a price from metadata, text and a photo.

    \b
    Examples:
        kerazoo demo price train --data demos/data/price/items.csv --out price.keras
        kerazoo demo price predict price.keras --brand vela --age 1.5 --condition new \\
            --description "silk jacket" --image demos/data/price/images/item_00000.png
    """


@demo_price.command("train")
@click.option(
    "--data",
    type=click.Path(),
    default=None,
    help="CSV with brand, age_years, condition, description, image, price.",
)
@click.option(
    "--images",
    type=click.Path(),
    default=None,
    help="Folder of the images [default: images/ beside the CSV].",
)
@click.option(
    "--synthetic",
    type=click.IntRange(5),
    default=None,
    help="Generate N items (reproducible) into --synthetic-dir and train on them.",
)
@click.option("--synthetic-dir", type=click.Path(), default="price_data", show_default=True)
@click.option("--epochs", type=click.IntRange(1), default=10, show_default=True)
@click.option(
    "--out",
    type=click.Path(),
    default="price_model.keras",
    show_default=True,
    help="Where to save the trained model.",
)
@click.option(
    "--weights",
    default="auto",
    show_default=True,
    help="InceptionV3 weights: auto, imagenet, none or a PATH.",
)
@click.option(
    "--plot", type=click.Path(), default=None, help="Write the training curves to this PNG."
)
@click.option(
    "--strategy",
    type=click.Choice(options.STRATEGIES),
    default="none",
    show_default=True,
    help=STRATEGY_HELP,
)
@click.option(
    "--ablation",
    is_flag=True,
    help="Also train without each input (metadata, description, photo) and "
    "report those validation MAEs: what each input adds.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def demo_price_train(
    data, images, synthetic, synthetic_dir, epochs, out, weights, plot, strategy, ablation, as_json
):
    """Train the price model; compare it with the median price.

    Bad rows (missing image, non-numeric age, empty description, negative
    price) are reported with their line numbers and skipped.

    \b
    Examples:
        kerazoo demo price train --data demos/data/price/items.csv --out price.keras
        kerazoo demo price train --synthetic 500 --out price.keras --ablation
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
        return price.train(
            csv_path,
            images,
            epochs=epochs,
            out=out,
            weights=weights,
            plot=plot,
            quiet=quiet,
            strategy=strategy,
            report=_stderr_line("price"),
            ablation=ablation,
        )

    s = _run_demo(run, as_json)
    _show(
        s,
        as_json,
        [
            f"{s['rows']} rows ({s['skipped']} skipped), {s['train']} train / "
            f"{s['validation']} validation, image weights: {s['image_weights']}",
            f"validation MAE {s['validation_mae']}   median-price baseline MAE {s['baseline_mae']}",
            *[f"  without the {k}: {v}" for k, v in s.get("validation_mae_without", {}).items()],
            f"saved {s['model']}",
        ],
    )


@demo_price.command("predict")
@click.argument("model", type=click.Path())
@click.option("--brand", required=True)
@click.option("--age", type=float, required=True, help="Age in years.")
@click.option("--condition", required=True, help="new, like new, good, fair, poor")
@click.option("--description", required=True)
@click.option("--image", type=click.Path(), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def demo_price_predict(model, brand, age, condition, description, image, as_json):
    """Price one item with a saved model.

    The model keeps its vocabularies and preprocessing: it needs nothing else.

    \b
    Example:
        kerazoo demo price predict price.keras --brand vela --age 1.5 --condition new \\
            --description "silk jacket" --image demos/data/price/images/item_00000.png
    """

    def run(quiet):
        from kerazoo.app.demos import price

        return price.predict(model, brand, age, condition, description, image)

    s = _run_demo(run, as_json)
    for warning in s["warnings"]:
        click.echo(f"kerazoo price: {warning}", err=True)
    _show(s, as_json, [f"predicted price: {s['price']:.2f}"])
