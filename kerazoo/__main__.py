"""`python -m kerazoo`: the same command line as the `kerazoo` script."""

from kerazoo.app.entry import main

main()
