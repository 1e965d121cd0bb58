"""`python -m training` is the `commitrisk` command."""

from training.cli import main

main()
