"""The root `commitrisk` command, shared option types and the one-line failure convention.

Heavy libraries (scikit-learn, onnxruntime, pygit2, evidently) are imported inside the commands, so
`commitrisk serve` works in the serving image, which has none of the training extras.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from pydantic import ValidationError

cli = typer.Typer(
    name="commitrisk",
    help="Just-in-time defect prediction: mine, train, serve, monitor and retrain.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Exit codes: 1 unexpected failure, 2 bad input (file, field, option), 3 refused by a quality gate.
# `score` also exits 1 when the commit's band reaches --fail-above: a CI verdict, not a failure of the tool.
EXIT_RISKY = 1
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
    """Print `error: <message>` as one line on stderr and exit with `code` (message: `<file/field>: <problem>`)."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def fail_options(exc: ValidationError) -> NoReturn:
    """`fail` with pydantic's first complaint about the options: `option <field>: <problem>` (`options:` when
    the complaint is about several fields together)."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    problem = first["msg"].removeprefix("Value error, ")
    fail(f"option {where}: {problem}" if where else f"options: {problem}")


def note(message: str) -> None:
    """One line on stderr about how a command went (stdout stays for its result)."""
    print(message, file=sys.stderr, flush=True)
