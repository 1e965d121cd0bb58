"""The `commitrisk` command line: options in, text/JSON out, nothing else.

One module per command group registers its commands on the root `cli` (root.py) when imported; this module
only assembles them. Every command imports its heavy libraries lazily, so `commitrisk serve` runs in the
serving image, which has none of the training extras.
"""

from __future__ import annotations

from training.cli.root import cli

# Registration order is the order of `commitrisk --help`: the data flow, mine → train → serve → retrain.
# isort: off
from training.cli import mine, synthetic, train, models, serve, clients, retrain
# isort: on

__all__ = ["cli", "clients", "main", "mine", "models", "retrain", "serve", "synthetic", "train"]


def main() -> None:
    """Console-script entry point (`commitrisk`, `python -m training`)."""
    cli()
