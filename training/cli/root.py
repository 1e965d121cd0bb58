"""The root `commitrisk` command, shared option types and the one-line failure convention.

Heavy libraries (scikit-learn, onnxruntime, pygit2, evidently) are imported inside the commands, so
`commitrisk serve` works in the serving image, which has none of the training extras.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

cli = typer.Typer(
    name="commitrisk",
    help="Just-in-time defect prediction: mine, train, serve, monitor and retrain.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Exit codes: 1 unexpected failure, 2 bad input (file, field, option), 3 refused by a quality gate.
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3

ModelsDir = Annotated[Path, typer.Option("--models", help="models directory (holds <N>/ and pointers)")]

AdminToken = Annotated[
    str | None, typer.Option(envvar="COMMITRISK_ADMIN_TOKEN", help="admin bearer token", show_default=False)
]

ServiceUrl = Annotated[
    str | None, typer.Option("--url", envvar="COMMITRISK_SERVICE_URL", help="service to /reload after deploying")
]


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print one line to stderr and exit with `code`."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)
