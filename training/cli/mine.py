"""`commitrisk mine`: the 15 change metrics and SZZ labels of a git repository (or a fleet of them) into CSVs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from training.cli.root import cli, fail, note

if TYPE_CHECKING:
    from collections.abc import Callable

    from training.mining.fleet import EntryOutcome, FleetEntry, FleetOptions
    from training.mining.launcher import JobOutcome

EXIT_SOME_FAILED = 1  # fleet mode: at least one repository failed (the others are mined)
# --index: a clone or fetch that failed may work next time (the Job retries exit 1); bad input exits 2 (not retried).
EXIT_RETRY = 1


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
        str,
        typer.Option(
            help="fixes: datasets (the published datasets' message rule), keywords (METRICS.md's), each plus "
            "--fix-shas, or listed (--fix-shas only)"
        ),
    ] = "datasets",
    szz: Annotated[str, typer.Option(help="SZZ linking: strict (window + tangled-fix rule) or plain")] = "strict",
    repository_id: Annotated[str | None, typer.Option(help="repository_id (default: dir name)")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="diff processes for histories of 2,000+ commits (default: CPU count)")
    ] = None,
    progress: Annotated[bool, typer.Option(help="progress bar on stderr")] = True,
    repos: Annotated[
        Path | None, typer.Option(help="fleet: repository list, `URL-or-path [ID]` a line", show_default=False)
    ] = None,
    out_dir: Annotated[
        str | None, typer.Option(help="fleet: data folder or s3://BUCKET/PREFIX (CSVs, states)", show_default=False)
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="fleet: repositories mined at once (one process each)")] = 1,
    index: Annotated[
        int | None, typer.Option(min=0, help="fleet: mine only entry I (the Indexed Job's pod)", show_default=False)
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="fleet: clones of URL entries (default: OUT_DIR/.repos; s3: staging)", show_default=False),
    ] = None,
    checkpoint: Annotated[int, typer.Option(min=1, help="fleet: save the state every N commits")] = 5000,
    json_output: Annotated[bool, typer.Option("--json", help="fleet --index: the outcome as one JSON line")] = False,
) -> None:
    """Mine the 15 change metrics and SZZ labels of every commit into a dataset CSV (or a fleet's, --repos)."""
    from training.mining.dataset import mine
    from training.mining.repository import MiningError

    if repos is not None:
        if fix_shas is not None or state is not None or no_state or repository_id is not None:
            fail("--repos: --fix-shas, --state, --no-state and --repository-id are per repository; not with --repos")
        if out_dir is None:
            fail("--repos: give --out-dir DIR (the folder of the fleet's CSVs and states)")
        from training.mining.bucket import BucketUrl, is_bucket
        from training.mining.fleet import FleetOptions

        if is_bucket(out_dir):
            try:
                BucketUrl.parse(out_dir)
            except MiningError as exc:
                fail(str(exc))

        per_job = workers or max(1, (os.cpu_count() or 1) // (1 if index is not None else jobs))
        options = FleetOptions(refs, labels, fix_rule, szz, since, per_job, checkpoint)
        if index is not None:
            _mine_index(repos, out_dir, index, options, cache_dir, json_output)
        else:
            _mine_fleet(repos, out_dir, options, jobs, cache_dir, progress)
        return
    for given, name in (
        (out_dir, "--out-dir"),
        (index, "--index"),
        (cache_dir, "--cache-dir"),
        (json_output or None, "--json"),
    ):
        if given is not None:
            fail(f"{name}: only with --repos FILE (fleet mining)")
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


def _mine_index(
    repos: Path, out_dir: str, index: int, options: FleetOptions, cache: Path | None, as_json: bool
) -> None:
    """One entry of the list, in this process: the Indexed Job pod's command."""
    from training.mining.bucket import BucketUnreachable, is_bucket
    from training.mining.fleet import entry_at, mine_entry, read_repos
    from training.mining.mirror import MirrorError
    from training.mining.repository import MiningError

    try:
        entry = entry_at(read_repos(repos), index, repos)
        if is_bucket(out_dir):
            outcome = _mine_to_bucket(entry, out_dir, options, cache)
        else:
            outcome = mine_entry(entry, Path(out_dir), options, cache)
    except (MirrorError, BucketUnreachable) as exc:
        fail(str(exc), EXIT_RETRY)
    except MiningError as exc:
        fail(str(exc))
    result = outcome.result
    walked, rows, seconds = (result.walked, result.written, result.seconds) if result else (0, 0, 0.0)
    if as_json:
        status = "skipped" if outcome.skipped else "mined"
        print(json.dumps({"repository_id": entry.repository_id, "status": status, "walked": walked, "rows": rows,
                          "seconds": round(seconds, 3)}))  # fmt: skip
    elif outcome.skipped:
        note(f"{entry.repository_id}: already mined at these refs; skipped")
    else:
        note(f"{entry.repository_id}: walked {walked} new commits in {seconds:.1f}s; {rows} rows → {out_dir}")


def _mine_to_bucket(entry: FleetEntry, out_dir: str, options: FleetOptions, cache: Path | None) -> EntryOutcome:
    """One entry into the bucket, staged in --cache-dir (kept for the next run) or a temp folder (removed)."""
    from training.mining.bucket import Bucket, BucketUrl, mine_entry_to_bucket

    bucket = Bucket(BucketUrl.parse(out_dir))
    if cache is not None:
        return mine_entry_to_bucket(entry, bucket, cache, options, cache)
    with tempfile.TemporaryDirectory(prefix="commitrisk-mine-") as staging:
        return mine_entry_to_bucket(entry, bucket, Path(staging), options)


def _mine_fleet(
    repos: Path, out_dir: str, options: FleetOptions, jobs: int, cache: Path | None, progress: bool
) -> None:
    """Every entry, `jobs` processes at a time; a summary table; exit 1 when any repository failed."""
    from rich.console import Console
    from rich.progress import Progress

    from training.mining.bucket import is_bucket
    from training.mining.fleet import read_repos
    from training.mining.launcher import run_fleet
    from training.mining.repository import MiningError

    try:
        entries = read_repos(repos)
    except MiningError as exc:
        fail(str(exc))
    # To a bucket, the processes share one staging folder (their clones, logs); a temp one goes at the end.
    staging = None if not is_bucket(out_dir) else cache or Path(tempfile.mkdtemp(prefix="commitrisk-fleet-"))
    keep_log = _log_uploader(out_dir, staging)
    try:
        with Progress(console=Console(stderr=True), disable=not progress) as bar:
            task = bar.add_task(f"mining {len(entries)} repositories", total=len(entries))

            def done(outcome: JobOutcome) -> None:
                keep_log(outcome)
                bar.advance(task)

            outcomes = run_fleet(repos, entries, out_dir, options, jobs, staging or cache, done, staging)
    finally:
        if staging is not None and cache is None:
            shutil.rmtree(staging, ignore_errors=True)
    Console(width=160).print(_summary(outcomes))
    failed = [o for o in outcomes if o.status == "failed"]
    for o in failed:
        note(f"{o.repository_id}: {o.error}")  # whole, where the table may wrap it
    if failed:
        logs = f"{out_dir.rstrip('/')}/.fleet/<id>.log"
        note(f"{len(failed)} of {len(outcomes)} repositories failed (logs: {logs})")
        raise typer.Exit(EXIT_SOME_FAILED)


def _log_uploader(out_dir: str, staging: Path | None) -> Callable[[JobOutcome], None]:
    """For a bucket: copy each process's log to `.fleet/<id>.log` in it, as a local data folder would hold it."""
    if staging is None:
        return lambda _outcome: None
    from training.mining.bucket import Bucket, BucketError, BucketUrl
    from training.mining.fleet import MARKERS
    from training.mining.repository import MiningError

    try:
        bucket = Bucket(BucketUrl.parse(out_dir))
    except MiningError:
        return lambda _outcome: None  # each process reports the same error in the table

    def upload(outcome: JobOutcome) -> None:
        relative = f"{MARKERS}/{outcome.repository_id}.log"
        # A log is a convenience: the outcome and its error line are in the summary either way.
        with contextlib.suppress(BucketError, OSError):
            bucket.put(staging / relative, relative)

    return upload


def _summary(outcomes: list[JobOutcome]) -> object:
    from rich.table import Table

    table = Table(title="Fleet mining")
    for name in ("repository", "status", "commits walked", "rows", "seconds", "commits/s", "peak RSS MiB", "error"):
        table.add_column(name, justify="left" if name in ("repository", "status", "error") else "right")
    for o in outcomes:
        table.add_row(o.repository_id, o.status, f"{o.walked:,}", f"{o.rows:,}", f"{o.seconds:.1f}", f"{o.rate:,.0f}",
                      f"{o.peak_rss_mib:.0f}", o.error)  # fmt: skip
    walked, seconds = sum(o.walked for o in outcomes), sum(o.seconds for o in outcomes)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("mined", "skipped", "failed")}
    table.caption = (
        ", ".join(f"{n} {s}" for s, n in counts.items()) + f"; {walked:,} commits walked in {seconds:.1f} s of mining"
    )
    return table
