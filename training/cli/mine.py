"""`commitrisk mine`: the 15 change metrics and SZZ labels of a git repository into a dataset CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training.cli.root import cli, fail, note


@cli.command("mine")
def mine_command(
    repo: Annotated[Path, typer.Argument(help="git repository (work tree or bare)")] = Path("."),
    out: Annotated[Path, typer.Option("--out", help="CSV to write (dataset format)")] = Path("commits.csv"),
    since: Annotated[str | None, typer.Option(help="only rows authored on/after this ISO date")] = None,
    refs: Annotated[str, typer.Option(help="start points: all, branches, tags or HEAD")] = "all",
    state: Annotated[
        Path | None, typer.Option(help="incremental state file (default: OUT.state)", show_default=False)
    ] = None,
    no_state: Annotated[bool, typer.Option("--no-state", help="neither read nor write a state file")] = False,
    labels: Annotated[bool, typer.Option(help="SZZ labels (buggy, fixed_by); --no-labels is faster")] = True,
    fix_shas: Annotated[Path | None, typer.Option(help="file of issue-tracker fix SHAs, one a line")] = None,
    fix_rule: Annotated[
        str, typer.Option(help="fixes: keywords (METRICS.md, plus --fix-shas) or listed (--fix-shas only)")
    ] = "keywords",
    szz: Annotated[str, typer.Option(help="SZZ linking: strict (window + tangled-fix rule) or plain")] = "strict",
    repository_id: Annotated[str | None, typer.Option(help="repository_id (default: dir name)")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="blame processes (default: CPU count)")] = None,
    progress: Annotated[bool, typer.Option(help="progress bar on stderr")] = True,
) -> None:
    """Mine the 15 change metrics and SZZ labels of every commit into a dataset CSV."""
    from training.mining.dataset import mine
    from training.mining.repository import MiningError

    state_path = None if no_state else (state or out.with_name(out.name + ".state"))
    try:
        result = mine(
            repo, out, since=since, refs=refs, state_path=state_path, labels=labels, fix_shas=fix_shas,
            fix_rule=fix_rule, szz=szz, repository_id=repository_id, workers=workers, progress=progress, note=note,
        )  # fmt: skip
    except MiningError as exc:
        fail(str(exc))
    if result.empty:
        note(f"{repo}: no commits yet; wrote the header only to {out}")
    else:
        note(
            f"walked {result.walked} new commits in {result.seconds:.1f}s ({result.rate:,.0f} commits/s); "
            f"{result.written} rows → {out}"
        )
