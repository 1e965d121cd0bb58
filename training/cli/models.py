"""`commitrisk models list|promote|rollback`: the published versions and the champion/challenger pointers.

    models promote N                    champion → N
    models promote --challenger [N]     finish a shadow deployment: the challenger (N among several) → champion
    models rollback                     undo the newest pointer move still in effect (drop the challenger it
                                        put in shadow, or champion → its previous version)
    models rollback --champion          champion → its previous version, whatever the challengers
    models rollback --challenger [N]    drop challenger N (default: the newest) from the shadow
`--url` (or COMMITRISK_SERVICE_URL) tells that service to reload after a champion move.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from training.cli.root import AdminToken, ModelsDir, ServiceUrl, cli, fail

if TYPE_CHECKING:
    from training.retrain.deploy import Deployment, Pointer

models_cli = typer.Typer(
    help="List published model versions; promote a version or a shadow challenger; roll back.", no_args_is_help=True
)
cli.add_typer(models_cli, name="models")

Version = Annotated[int | None, typer.Argument(min=1, metavar="VERSION", help="model version", show_default=False)]
ChallengerFlag = Annotated[
    bool, typer.Option("--challenger", help="act on the shadow challengers (VERSION picks one when several)")
]


@models_cli.command("list")
def list_command(
    models: ModelsDir = Path("models"),
    json_output: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Published versions with their type, test metrics and pointers."""
    from training.cli.output import print_versions

    print_versions(models, json_output)


@models_cli.command("promote")
def promote_command(
    version: Version = None,
    challenger: ChallengerFlag = False,
    models: ModelsDir = Path("models"),
    url: ServiceUrl = None,
    token: AdminToken = None,
) -> None:
    """Make VERSION the champion; with --challenger, a shadow challenger becomes champion and leaves the shadow."""
    from training.retrain.deploy import DeployError, promote

    try:
        done = promote(models, version, challenger=challenger, url=url, token=token)
    except DeployError as exc:
        fail(str(exc))
    print(summary(done, url))


@models_cli.command("rollback")
def rollback_command(
    version: Version = None,
    challenger: ChallengerFlag = False,
    champion: Annotated[
        bool, typer.Option("--champion", help="move the champion back even while challengers are in shadow")
    ] = False,
    models: ModelsDir = Path("models"),
    url: ServiceUrl = None,
    token: AdminToken = None,
) -> None:
    """Undo the newest pointer move: drop the challenger it put in shadow, or the champion back one version."""
    from training.retrain.deploy import DeployError, rollback

    if champion and challenger:
        fail("--champion/--challenger: name one pointer")
    if version is not None and not challenger:
        fail(f"VERSION: rollback takes one only with --challenger (to serve {version}: models promote {version})")
    pointer: Pointer | None = "champion" if champion else "challenger" if challenger else None
    try:
        done = rollback(models, pointer=pointer, version=version, url=url, token=token)
    except DeployError as exc:
        fail(str(exc))
    print(summary(done, url))


def summary(done: Deployment, url: str | None) -> str:
    """The one line a pointer command prints: where the champion points now, and what else happened."""
    notes = [done.note] if done.note else []
    if done.reloaded is not None:
        notes.append(f"{url} serves version {done.reloaded.get('version')}")
    return f"champion -> {done.champion}" + (f" ({'; '.join(notes)})" if notes else "")
