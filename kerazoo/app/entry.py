"""The `kerazoo` console script's first code: Ctrl-C is one line and exit 130
from the very start, before the command line's own modules are imported
(`kerazoo.app.cli.main` installs the full handler, which also removes what
was being written)."""

import os
import signal


def _interrupted_early(signum, frame):
    os.write(2, b"kerazoo: interrupted\n")
    os._exit(130)


def main():
    signal.signal(signal.SIGINT, _interrupted_early)
    from kerazoo.app.cli import main as cli_main

    cli_main()
