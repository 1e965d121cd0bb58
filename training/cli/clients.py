"""Commands that talk to a running service: score (one commit, for CI), replay, feedback import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training.cli.root import EXIT_RISKY, AdminToken, cli, fail, note

ClientToken = Annotated[
    str | None,
    typer.Option("--token", envvar="COMMITRISK_CLIENT_TOKEN", help="client bearer token", show_default=False),
]


@cli.command("score")
def score_command(
    url: Annotated[str, typer.Option(help="service base URL (POSTs to URL/predict)")],
    repo: Annotated[Path, typer.Option(help="git repository")] = Path("."),
    rev: Annotated[str, typer.Option(help="commit to score (with --since: the range's end)")] = "HEAD",
    fail_above: Annotated[
        str | None, typer.Option(help="exit 1 when the risk band is at/above: medium or high")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print the service's JSON answer")] = False,
    state: Annotated[Path | None, typer.Option(help="mining state file to reuse (from `mine`)")] = None,
    repository_id: Annotated[str | None, typer.Option(help="repository name (default: dir name)")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="HTTP timeout in seconds")] = 30.0,
    since: Annotated[
        str | None, typer.Option(help="backfill: every commit authored since this ISO date", show_default=False)
    ] = None,
    span: Annotated[
        str | None, typer.Option("--range", help="backfill: the commits of A..B", show_default=False)
    ] = None,
    chunk: Annotated[int, typer.Option(min=1, help="backfill: commits per /predict/batch request")] = 500,
    attempts: Annotated[int, typer.Option(min=1, help="backfill: tries per chunk (503, connection errors)")] = 8,
    progress: Annotated[bool, typer.Option(help="backfill: progress bar on stderr")] = True,
    token: ClientToken = None,
) -> None:
    """Score one commit in CI (metrics from history, POST /predict, band and reasons, gate on band); or, with
    --since/--range, backfill every commit of a range through /predict/batch, once per model version."""
    import json

    from training.cli.output import prediction_lines
    from training.clients.score import BANDS, ScoreError, fails_gate, post_predict, predict_payload
    from training.mining.dataset import mine_commit
    from training.mining.repository import MiningError

    if since is not None or span is not None:
        if fail_above is not None:
            fail("--fail-above: gates one commit; not with --since/--range")
        _backfill(url, repo, rev, since, span, state, repository_id, timeout, chunk, attempts, progress, token,
                  json_output)  # fmt: skip
        return
    if fail_above is not None and fail_above not in BANDS[1:]:  # failing on "low" would fail every commit
        fail(f"--fail-above: expected 'medium' or 'high', got {fail_above!r}")
    try:
        mined = mine_commit(repo, rev, state, repository_id)
    except MiningError as exc:
        fail(str(exc))
    if mined.row is None:
        kind = "is a merge commit" if mined.merge else "changes no counted source file"
        note(f"commit {mined.sha[:12]} {kind}: nothing to score")
        return
    try:
        prediction = post_predict(url, predict_payload(mined.row, mined.repository_id), timeout, token)
    except ScoreError as exc:
        fail(str(exc))
    lines = prediction_lines(prediction, mined.sha, url)  # the text ends with the commit's web page
    print(json.dumps(prediction, sort_keys=True) if json_output else "\n".join(lines))
    if fails_gate(prediction["risk_band"], fail_above):
        raise typer.Exit(EXIT_RISKY)


def _backfill(
    url: str, repo: Path, rev: str, since: str | None, span: str | None, state: Path | None, repository_id: str | None,
    timeout: float, chunk: int, attempts: int, progress: bool, token: str | None, as_json: bool,
) -> None:  # fmt: skip
    """`score --since/--range`: one walk, chunks through /predict/batch, a summary table (or JSON)."""
    import json
    import time

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from training.clients.backfill import backfill
    from training.clients.score import BANDS, ScoreError
    from training.mining.backfill import range_rows
    from training.mining.repository import MiningError

    began = time.perf_counter()
    try:
        found = range_rows(repo, since=since, span=span, rev=rev, state_path=state, repository_id=repository_id,
                           progress=progress)  # fmt: skip
    except MiningError as exc:
        fail(str(exc))
    try:
        with Progress(console=Console(stderr=True), disable=not progress) as bar:
            task = bar.add_task("scoring", total=len(found.rows))
            summary = backfill(url, found.rows, found.repository_id, chunk=chunk, attempts=attempts, timeout=timeout,
                               token=token, advance=lambda n: bar.advance(task, n))  # fmt: skip
    except ScoreError as exc:
        fail(str(exc))  # as one commit's: exit 2; a re-run continues where this one stopped
    seconds = time.perf_counter() - began
    result = {
        "repository": found.repository_id, "commits": found.commits, "scored": summary.scored,
        "already_logged": summary.already_logged, "not_scorable": found.unscorable, **summary.bands,
        "model_version": summary.model_version, "retries": summary.retries, "seconds": round(seconds, 3),
    }  # fmt: skip
    if as_json:
        print(json.dumps(result))
        return
    table = Table(title=f"Backfill of {found.repository_id} (model v{summary.model_version})")
    table.add_column("commits")
    table.add_column("count", justify="right")
    rows = [("in range", found.commits), ("scored now", summary.scored), ("already logged", summary.already_logged),
            ("not scorable (merges, no counted file)", found.unscorable),
            *((f"{band} (scored now)", summary.bands[band]) for band in reversed(BANDS))]  # fmt: skip
    for name, count in rows:
        table.add_row(name, f"{count:,}")
    table.caption = (
        f"{seconds:.1f} s, {found.commits / seconds if seconds else 0:,.0f} commits/s; {summary.retries} retries"
    )
    Console(width=160).print(table)


@cli.command("replay")
def replay_command(
    data: Annotated[Path, typer.Argument(help="labelled dataset CSV (shared dataset format)")],
    url: Annotated[str, typer.Option(help="service base URL")],
    speed: Annotated[
        float, typer.Option(min=0, help="dataset seconds per wall-clock second (0: as fast as possible)")
    ] = 0.0,
    label_delay_days: Annotated[float, typer.Option(min=0, help="days until a label is sent")] = 90.0,
    token: AdminToken = None,
    progress: Annotated[bool, typer.Option(help="progress bar on stderr")] = True,
) -> None:
    """Replay commits in time order to /predict and their labels to /feedback once mature."""
    from rich.console import Console
    from rich.progress import Progress

    from training.clients.feedback import FeedbackError
    from training.clients.replay import load_commits, run_replay

    try:
        commits = load_commits(data)
        with Progress(console=Console(stderr=True), disable=not progress) as bar:
            task = bar.add_task(f"replay {data.name}", total=len(commits))
            s = run_replay(url, commits, speed, label_delay_days, token, lambda n: bar.advance(task, n))
    except FeedbackError as exc:
        fail(str(exc))
    errors = f" {s.errors}" if s.errors else ""  # rejections by HTTP status, when there were any
    print(f"{data}: {s.predicted} predicted, {s.rejected} rejected{errors}, "
          f"{s.labels_sent} labels sent, {s.labels_pending} still immature")  # fmt: skip


feedback_cli = typer.Typer(help="Send late labels (defect outcomes) to a service.", no_args_is_help=True)
cli.add_typer(feedback_cli, name="feedback")


@feedback_cli.command("import")
def feedback_import(
    file: Annotated[Path, typer.Argument(help="CSV with commit_id,buggy[,repository,fixed_by,labeled_at]")],
    url: Annotated[str, typer.Option(help="service base URL")],
    token: AdminToken = None,
) -> None:
    """Upsert labels from a CSV (the dataset format works) via POST /feedback; idempotent."""
    from training.clients.feedback import FeedbackError, import_feedback

    try:
        read, upserted = import_feedback(file, url, token)
    except FeedbackError as exc:
        fail(str(exc))
    print(f"{file}: {read} labels sent, {upserted} upserted")
