"""`kerazoo demo adder|qa|posts|similarity|inception|residual`: the chapter's demos."""

from __future__ import annotations

import click

from kerazoo import options
from kerazoo.app.cli._base import UserError, _run_demo, _show
from kerazoo.app.cli.demo_commands import demo

STRATEGY_HELP = (
    "Train data-parallel on this machine's devices: mirrored "
    "(tf.distribute, TensorFlow) or data-parallel (keras.distribution, JAX)."
)


def _run_chapter(name, as_json, **kwargs):
    # A rule between two flags, said in flags (the library says it in its
    # parameters' names, which the command line does not rewrite).
    if kwargs.get("plot") and not kwargs.get("retrain"):
        raise UserError("--plot: draws the training curves: it needs --retrain")

    def run(quiet):
        from kerazoo.app.demos import chapter

        return chapter.run(name, quiet=quiet, **kwargs)[0]

    return _run_demo(run, as_json)


def _training_options(epochs):
    def decorate(fn):
        fn = click.option(
            "--strategy",
            type=click.Choice(options.STRATEGIES),
            default="none",
            show_default=True,
            help=STRATEGY_HELP,
        )(fn)
        fn = click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")(fn)
        fn = click.option(
            "--plot",
            type=click.Path(),
            default=None,
            help="Write the training curves to this PNG (with --retrain).",
        )(fn)
        fn = click.option(
            "--epochs",
            type=click.IntRange(1),
            default=None,
            help=f"Training epochs (with --retrain) [default: {epochs}].",
        )(fn)
        fn = click.option(
            "--retrain", is_flag=True, help="Train anew instead of loading the shipped weights."
        )(fn)
        return fn

    return decorate


@demo.command("adder")
@_training_options(30)
def demo_adder(strategy, retrain, epochs, plot, as_json):
    """7.110: a functional-API model learns to add 64 numbers.

    Reports the test MAE next to the notes' common-sense baseline (always
    answering the mean sum).

    \b
    Example:
        kerazoo demo adder --retrain --epochs 5
    """
    s = _run_chapter("adder", as_json, retrain=retrain, epochs=epochs, plot=plot, strategy=strategy)
    _show(
        s,
        as_json,
        [
            f"adder ({s['params']} params, weights: {s['weights']})",
            f"test MAE {s['test_mae']}   common-sense baseline MAE {s['baseline_mae']}",
        ],
    )


@demo.command("qa")
@_training_options(12)
def demo_qa(strategy, retrain, epochs, plot, as_json):
    """7.120: two inputs, a text and a question, one answer.

    The text mentions a colour, an animal, a city and a number among filler
    words; the question names one topic; the answer is the text's value of
    it. Neither input alone suffices: reported next to the best rules that
    ignore the question or the text, and with the questions shuffled.

    \b
    Example:
        kerazoo demo qa --json
    """
    s = _run_chapter("qa", as_json, retrain=retrain, epochs=epochs, plot=plot, strategy=strategy)
    _show(
        s,
        as_json,
        [
            f"question answering ({s['params']} params, weights: {s['weights']})",
            f"test accuracy {s['test_accuracy']:.1%}   question-blind rule "
            f"{s['question_blind_accuracy']:.1%}   text-blind rule "
            f"{s['text_blind_accuracy']:.1%}",
            f"with the questions shuffled: {s['shuffled_questions_accuracy']:.1%}",
        ],
    )


@demo.command("posts")
@_training_options(8)
@click.option(
    "--loss-weights",
    default=None,
    help="comma-separated NAME=W for age, income, gender [default: age=0.01,income=1,gender=1]; "
    "any other weighting trains anew.",
)
def demo_posts(strategy, retrain, epochs, plot, as_json, loss_weights):
    """7.130: one base, three heads: age, income, gender.

    The heads are age (mse), income (softmax) and gender (sigmoid). Their
    losses are summed with weights; without them the age MSE (in years
    squared) drowns the other two.

    \b
    Example:
        kerazoo demo posts --retrain --loss-weights age=1,income=1,gender=1
    """
    from_cli = {} if loss_weights is None else {"loss_weights": loss_weights}
    s = _run_chapter(
        "posts", as_json, retrain=retrain, epochs=epochs, plot=plot, strategy=strategy, **from_cli
    )
    _show(
        s,
        as_json,
        [
            f"posts ({s['params']} params, weights: {s['weights']}, "
            f"loss weights {s['loss_weights']})",
            f"age MAE {s['age_mae']} (median baseline {s['age_baseline_mae']})",
            f"income accuracy {s['income_accuracy']:.1%} "
            f"(majority {s['income_baseline_accuracy']:.1%})",
            f"gender accuracy {s['gender_accuracy']:.1%} "
            f"(majority {s['gender_baseline_accuracy']:.1%})",
        ],
    )


@demo.command("similarity")
@_training_options(15)
@click.option(
    "--merge",
    type=click.Choice(options.SIAMESE_MERGES),
    default="abs_diff",
    show_default=True,
    help="How the shared LSTM's two encodings meet (concat is the chapter's; "
    "euclidean outputs their distance, trained with a contrastive loss; "
    "anything but abs_diff trains anew).",
)
def demo_similarity(strategy, retrain, epochs, plot, as_json, merge):
    """7.150: one shared LSTM: are two digits the same?

    scikit-learn's bundled 8x8 digits (the `demos` extra), read row by row
    as 8-step sequences, in pairs; accuracy on pairs of digits the model
    never saw, next to chance and a raw-pixel threshold.

    \b
    Example:
        kerazoo demo similarity --merge euclidean --retrain
    """
    s = _run_chapter(
        "similarity",
        as_json,
        retrain=retrain,
        epochs=epochs,
        plot=plot,
        strategy=strategy,
        merge=merge,
    )
    rule = f", same below distance {s['distance_threshold']}" if "distance_threshold" in s else ""
    _show(
        s,
        as_json,
        [
            f"shared LSTM, merge={s['merge']} ({s['params']} params, "
            f"weights: {s['weights']}{rule})",
            f"held-out pair accuracy {s['test_accuracy']:.1%} (raw-pixel L1 "
            f"threshold {s['pixel_l1_accuracy']:.1%}, chance 50%); "
            f"same answer with inputs swapped: {s['order_agreement']:.1%}",
        ],
    )


@demo.command("inception")
@click.option(
    "--image",
    type=click.Path(),
    default=None,
    help="With ImageNet weights: print InceptionV3's top-5 labels for it.",
)
@click.option(
    "--weights", type=click.Choice(["auto", "imagenet", "none"]), default="auto", show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def demo_inception(image, weights, as_json):
    """7.140: Inception modules and InceptionV3's top-5 labels.

    Parameter counts of InceptionV3 and a small kerazoo model; with --image
    and the ImageNet weights on this machine, the photo's top-5 labels.

    \b
    Example:
        kerazoo demo inception --image photo.jpg
    """

    def run(quiet):
        from kerazoo.app.demos import chapter

        return chapter.run_inception(
            image=image,
            weights=weights,
            summary_print=None if quiet else (lambda line, **_: click.echo(line)),
        )

    s = _run_demo(run, as_json)
    lines = [
        f"InceptionBlock(128, strides=2) on 3 channels: {s['chapter_block_params']:,} params",
        f"small kerazoo Inception model: {s['small_inception']['total']:,} params",
        f"InceptionV3: {s['inception_v3']['total']:,} params",
    ]
    if s.get("top5"):
        lines += [f"  {t['score']:.3f} {t['label']} ({t['wnid']})" for t in s["top5"]]
    if s.get("note"):
        lines.append(s["note"])
    _show(s, as_json, lines)


@demo.command("residual")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def demo_residual(as_json):
    """7.140: residual connections: a small ResNet, Xception's.

    \b
    Example:
        kerazoo demo residual --json
    """

    def run(quiet):
        from kerazoo.app.demos import chapter

        return chapter.run_residual(
            summary_print=None if quiet else (lambda line, **_: click.echo(line))
        )

    s = _run_demo(run, as_json)
    _show(
        s,
        as_json,
        [
            f"small kerazoo residual model: {s['small_residual']['total']:,} params",
            f"Xception: {s['xception']['total']:,} params, "
            f"{s['xception_residual_connections']} residual connections",
        ],
    )
