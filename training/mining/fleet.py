"""A fleet of repositories mined into one data folder: the repository list, and one repository's run.

Layout of the data folder (`--out-dir`), one set of files per repository id:
    <id>.csv            the dataset (what `commitrisk train --data DIR` reads: every top-level *.csv)
    <id>.csv.state      the incremental state, saved every `checkpoint` commits: a killed run continues from it
    .fleet/<id>.json    written last: the refs and options it was mined at; while they hold, the id is skipped
    .fleet/<id>.log     the run's messages (written by the launcher)
    .repos/<id>.git     bare clones of URL entries (the default cache), fetched on every later run
The same files (clones aside) under `s3://BUCKET/PREFIX/` when the folder is a bucket (bucket.py).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from training.mining.dataset import MineResult, mine
from training.mining.mirror import is_url, local_copy
from training.mining.repository import MiningError, open_repository, start_points
from training.mining.state import FORMAT

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a file name on every filesystem, no hidden files
MARKERS = ".fleet"
CACHE = ".repos"


@dataclass(frozen=True, slots=True)
class FleetEntry:
    """One line of the repository list: where the repository is, and the id its rows and files carry."""

    source: str  # a URL (cloned into the cache) or a local path (mined in place)
    repository_id: str


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """The `mine` options every repository of the fleet is mined with."""

    refs: str = "all"
    labels: bool = True
    fix_rule: str = "datasets"
    szz: str = "strict"
    since: str | None = None
    workers: int = 1
    checkpoint: int = 5000


def _default_id(source: str) -> str:
    name = source.rstrip("/").replace(":", "/").rsplit("/", 1)[-1]
    return name[:-4] if name.endswith(".git") and len(name) > 4 else name


def read_repos(path: Path) -> list[FleetEntry]:
    """The entries of a repository list: `SOURCE [ID]` a line, `#` comments; relative paths are read from the
    list's folder. An unreadable list, a bad id or an id used twice is a MiningError naming the line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MiningError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from exc
    entries: list[FleetEntry] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) > 2:
            raise MiningError(f"{path}:{number}: expected `SOURCE [ID]`, got {len(fields)} fields")
        source = fields[0]
        if not is_url(source) and not Path(source).is_absolute():
            source = str(path.parent / source)
        repository_id = fields[1] if len(fields) == 2 else _default_id(fields[0])
        if not _ID.match(repository_id):
            raise MiningError(f"{path}:{number}: repository id {repository_id!r} is not a plain file name")
        if repository_id in seen:
            raise MiningError(
                f"{path}:{number}: repository id {repository_id!r} already used on line {seen[repository_id]}"
            )
        seen[repository_id] = number
        entries.append(FleetEntry(source, repository_id))
    return entries


def entry_at(entries: list[FleetEntry], index: int, path: Path) -> FleetEntry:
    """The `index`-th entry (0-based, as `JOB_COMPLETION_INDEX`); out of range is a MiningError."""
    if not 0 <= index < len(entries):
        raise MiningError(f"--index: {index} is outside {path}'s {len(entries)} repositories (0..{len(entries) - 1})")
    return entries[index]


def marker_path(out_dir: Path, repository_id: str) -> Path:
    """Where the done marker of a repository id lives."""
    return out_dir / MARKERS / f"{repository_id}.json"


def _done_as(tips: list[str], options: FleetOptions) -> dict[str, object]:
    # Processes and checkpoint spacing change how a run goes, not what it writes; the state format changes with
    # the rules (a metric's or a label's definition), so an upgrade that changes them mines the fleet again.
    kept = {k: v for k, v in asdict(options).items() if k not in ("workers", "checkpoint")}
    return {"tips": tips, "options": kept, "format": FORMAT}


def marker_holds(marker: Path, tips: list[str], options: FleetOptions) -> bool:
    """True when the marker file says its CSV was written at exactly these refs with these options."""
    try:
        content = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    expected = _done_as(tips, options)
    return {k: content.get(k) for k in expected} == expected


def is_done(out_dir: Path, repository_id: str, tips: list[str], options: FleetOptions) -> bool:
    """True when the id's CSV was written at exactly these refs with these options (nothing to do)."""
    holds = marker_holds(marker_path(out_dir, repository_id), tips, options)
    return holds and (out_dir / f"{repository_id}.csv").is_file()


def _write_marker(path: Path, content: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(content, indent=1, sort_keys=True), encoding="utf-8")
    temp.replace(path)


@dataclass(frozen=True, slots=True)
class EntryOutcome:
    """What one repository's run did: skipped (already done at these refs) or mined."""

    repository_id: str
    skipped: bool
    result: MineResult | None


def checkout(entry: FleetEntry, cache: Path) -> Path:
    """The repository to mine: a URL cloned or fetched into `cache`, a path as it is."""
    return local_copy(entry.source, cache, entry.repository_id) if is_url(entry.source) else Path(entry.source)


def tips_of(repo_path: Path, options: FleetOptions) -> list[str]:
    """The commits the walk starts from (what the marker records)."""
    return sorted(str(oid) for oid in start_points(open_repository(repo_path), options.refs))


def mine_files(
    repo_path: Path,
    out_dir: Path,
    repository_id: str,
    options: FleetOptions,
    tips: list[str],
    checkpointed: Callable[[Path], None] | None = None,
) -> MineResult:
    """Mine into `<id>.csv` and `<id>.csv.state` of `out_dir` (from that state), then write the marker last."""
    out = out_dir / f"{repository_id}.csv"
    result = mine(
        repo_path, out, since=options.since, refs=options.refs, state_path=out.with_name(out.name + ".state"),
        labels=options.labels, fix_rule=options.fix_rule, szz=options.szz, repository_id=repository_id,
        workers=options.workers, checkpoint=options.checkpoint, checkpointed=checkpointed,
    )  # fmt: skip
    content = _done_as(tips, options) | {"walked": result.walked, "rows": result.written, "seconds": result.seconds}
    _write_marker(marker_path(out_dir, repository_id), content)
    return result


def mine_entry(entry: FleetEntry, out_dir: Path, options: FleetOptions, cache: Path | None = None) -> EntryOutcome:
    """Clone or fetch the entry (URLs), then mine it into `out_dir` unless done at today's refs; resumes from the
    checkpointed state of a killed run. MiningError (one line) for anything wrong with this repository."""
    name = entry.repository_id
    repo_path = checkout(entry, cache or out_dir / CACHE)
    tips = tips_of(repo_path, options)
    if is_done(out_dir, name, tips, options):
        return EntryOutcome(name, True, None)
    return EntryOutcome(name, False, mine_files(repo_path, out_dir, name, options, tips))
