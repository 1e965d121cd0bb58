"""`mine --jobs N` on one machine: N repositories at a time, each in its own process running exactly the command
a pod of the Indexed Job runs (`commitrisk mine --repos LIST --out-dir DIR --index I`).

A process per repository rather than a process pool: a repository that crashes its process (libgit2, memory)
fails alone instead of breaking the pool, the local run and the cluster run are the same code path, and each
repository's peak memory is measured by the kernel (`wait4`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from training.mining.fleet import MARKERS, FleetEntry, FleetOptions


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """One repository's process: `mined`, `skipped` or `failed` (with its error line), and what it measured."""

    repository_id: str
    status: str
    walked: int = 0
    rows: int = 0
    seconds: float = 0.0
    peak_rss_mib: float = 0.0
    error: str = ""

    @property
    def rate(self) -> float:
        """Commits walked per second of walking (0 when nothing was walked)."""
        return self.walked / self.seconds if self.seconds > 0 else 0.0


def index_command(repos: Path, out_dir: str | Path, index: int, options: FleetOptions, cache: Path | None) -> list[str]:
    """The command mining entry `index` of the list: the Indexed Job pod's, plus --json for the outcome."""
    command = [sys.executable, "-m", "training", "mine", "--repos", str(repos), "--out-dir", str(out_dir),
               "--index", str(index), "--json", "--no-progress", "--refs", options.refs,
               "--labels" if options.labels else "--no-labels", "--fix-rule", options.fix_rule, "--szz", options.szz,
               "--workers", str(options.workers), "--checkpoint", str(options.checkpoint)]  # fmt: skip
    if options.since is not None:
        command += ["--since", options.since]
    if cache is not None:
        command += ["--cache-dir", str(cache)]
    return command


def _error_line(log: str, code: int) -> str:
    errors = [line.removeprefix("error: ") for line in log.splitlines() if line.startswith("error: ")]
    if errors:
        return errors[-1]
    return f"killed by signal {-code}" if code < 0 else f"exited with {code}"


def run_one(command: list[str], entry: FleetEntry, log: Path) -> JobOutcome:
    """Run one repository's process to its end; its stderr goes to `log`, its JSON outcome comes on stdout."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as err:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err)
        assert process.stdout is not None
        out = process.stdout.read()
        # wait4, not wait(): the kernel's peak RSS of this child (its largest process, diff workers included).
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = code = os.waitstatus_to_exitcode(status)
    rss = usage.ru_maxrss / 1024
    if code == 0:
        try:
            found = json.loads(out.decode().strip().splitlines()[-1])
            return JobOutcome(
                entry.repository_id, found["status"], found["walked"], found["rows"], found["seconds"], rss
            )
        except (ValueError, KeyError, IndexError):
            pass  # an answer we cannot read is a failure like any other
    text = log.read_text(encoding="utf-8", errors="replace")
    return JobOutcome(entry.repository_id, "failed", peak_rss_mib=rss, error=_error_line(text, code))


def run_fleet(
    repos: Path,
    entries: list[FleetEntry],
    out_dir: str | Path,
    options: FleetOptions,
    jobs: int,
    cache: Path | None = None,
    done: Callable[[JobOutcome], None] = lambda _outcome: None,
    logs: Path | None = None,
) -> list[JobOutcome]:
    """Mine every entry, `jobs` processes at a time; outcomes in list order (`done` hears each as it ends).

    `out_dir` is a folder or an `s3://` URL (passed on as it is); `logs` is the local folder whose `.fleet/`
    gets each process's messages (default: `out_dir`, which must then be a folder).
    """

    def one(index: int) -> JobOutcome:
        entry = entries[index]
        log = (logs or Path(out_dir)) / MARKERS / f"{entry.repository_id}.log"
        outcome = run_one(index_command(repos, out_dir, index, options, cache), entry, log)
        done(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="mine-job") as pool:
        return list(pool.map(one, range(len(entries))))
