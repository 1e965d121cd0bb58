"""The `commitrisk` command line: the only place where pipeline stages are chained.

Each module registers its commands on the root `cli`; every command imports its heavy libraries lazily.
"""

from __future__ import annotations

from training.cli import mine, retrain, serve, train
from training.cli.root import cli

__all__ = ["cli", "main", "mine", "retrain", "serve", "train"]


def main() -> None:
    """Console-script entry point."""
    cli()
