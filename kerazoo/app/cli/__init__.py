"""The `kerazoo` command line (also `python -m kerazoo`), one module per
command group over shared plumbing (`_base`).

Nothing heavy is imported until a command runs (`import kerazoo` itself is
light: it registers its layers once Keras is imported), so `kerazoo --help`
and `kerazoo --version` answer at once.
"""

from kerazoo.app.cli import (  # noqa: F401
    chapter_commands,
    demo_commands,
    export_command,
    list_command,
    price_commands,
    weights_commands,
)
from kerazoo.app.cli._base import UserError, cli, import_kerazoo, main

__all__ = ["UserError", "cli", "import_kerazoo", "main"]
