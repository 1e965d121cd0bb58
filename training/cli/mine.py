"""Git commands: mine (metrics + SZZ labels into a dataset CSV) and score (one commit, for CI)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training.cli.root import cli


@cli.command("mine")
def mine_command(
    repo: Annotated[Path, typer.Argument(help="git repository (work tree or bare)")] = Path("."),
    out: Annotated[Path, typer.Option("--out", help="CSV to write (dataset format)")] = Path("commits.csv"),
    since: Annotated[str | None, typer.Option(help="only rows authored on/after this ISO date")] = None,
    branches: Annotated[str, typer.Option(help="all (local + remote branches) or HEAD")] = "all",
    state: Annotated[
        Path | None, typer.Option(help="incremental state file (default: OUT.state)", show_default=False)
    ] = None,
    no_state: Annotated[bool, typer.Option("--no-state", help="neither read nor write a state file")] = False,
    labels: Annotated[bool, typer.Option(help="SZZ labels (buggy, fixed_by); --no-labels is faster")] = True,
    fix_shas: Annotated[Path | None, typer.Option(help="file of issue-tracker fix SHAs, one a line")] = None,
    repository_id: Annotated[str | None, typer.Option(help="repository_id (default: dir name)")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="blame processes (default: CPU count)")] = None,
    progress: Annotated[bool, typer.Option(help="progress bar on stderr")] = True,
) -> None:
    """Mine the 15 change metrics and SZZ labels of every commit into a dataset CSV."""
    from training.mining.command import run_mine

    state_path = None if no_state else (state or out.with_name(out.name + ".state"))
    code = run_mine(
        repo, out, since=since, branches=branches, state_path=state_path, labels=labels, fix_shas=fix_shas,
        repository_id=repository_id, workers=workers, progress=progress,
    )  # fmt: skip
    raise typer.Exit(code)


@cli.command("score")
def score_command(
    url: Annotated[str, typer.Option(help="service base URL (POSTs to URL/predict)")],
    repo: Annotated[Path, typer.Option(help="git repository")] = Path("."),
    rev: Annotated[str, typer.Option(help="commit to score")] = "HEAD",
    fail_above: Annotated[
        str | None, typer.Option(help="exit 1 when the risk band is at/above: medium or high")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print the service's JSON answer")] = False,
    state: Annotated[Path | None, typer.Option(help="mining state file to reuse (from `mine`)")] = None,
    repository_id: Annotated[str | None, typer.Option(help="repository name (default: dir name)")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="HTTP timeout in seconds")] = 30.0,
) -> None:
    """Score one commit in CI: metrics from history, POST /predict, print band and reasons, gate on band."""
    from training.mining.command import run_score

    code = run_score(
        repo, url, rev=rev, fail_above=fail_above, as_json=json_output, state_path=state,
        repository_id=repository_id, timeout=timeout,
    )  # fmt: skip
    raise typer.Exit(code)
