"""`kerazoo list`: the registry's layers and backbones, and the demos."""

from __future__ import annotations

import fnmatch

import click

from kerazoo import registry
from kerazoo.app.cli._base import DEMOS, _emit, cli


@cli.command("list")
@click.argument("pattern", required=False)
@click.option(
    "--kind",
    type=click.Choice([*registry.KINDS, "demo"]),
    default=None,
    help="Only entries of this kind.",
)
@click.option("--pretrained", is_flag=True, help="Only backbones with pretrained weights.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(pattern, kind, pretrained, as_json):
    """List kerazoo's layers, backbones and demos.

    PATTERN filters the names, shell-style.

    \b
    Examples:
        kerazoo list --pretrained
        kerazoo list '*xception*' --json
    """
    entries = []
    if kind != "demo":
        entries = registry.describe(kind, pretrained=pretrained)  # without importing Keras
    if kind in (None, "demo") and not pretrained:
        entries += [
            {"name": name, "kind": "demo", "summary": f"{section}: {summary}", "weights": []}
            for name, (section, summary) in DEMOS.items()
        ]
    if pattern:
        entries = [e for e in entries if fnmatch.fnmatch(e["name"], pattern)]
    width = max((len(e["name"]) for e in entries), default=4)

    def weights_note(entry):
        names = [
            f"{w['name']} ({', '.join(sorted({f['availability'] for f in w['files'].values()}))})"
            for w in entry["weights"]
        ]
        return f"  [weights: {', '.join(names)}]" if names else ""

    lines = [
        f"{e['kind']:<9} {e['name']:<{width}}  {e['summary']}{weights_note(e)}" for e in entries
    ]
    _emit(entries, as_json, "\n".join(lines))
