"""Mining benchmark: `commitrisk mine` against PyDriller's line counts on the same commits, in one run.

    .venv/bin/python -m bench.mine [--commits 20000] [--repo-dir DIR] [--only generated HikariCP jedis]
                                   [--rounds 1] [--skip-pydriller] [--no-append]

Repositories: a generated one (bench/make_repo.py, built once and reused) and the two real upstream
histories of ../shared/repos (HikariCP, jedis: `git clone --mirror` of the bundles, every branch and tag).
On each, in this order and `--rounds` times (the best wall time of each command is kept, so a burst of
load elsewhere on a shared machine hits all commands alike): `mine --no-labels`, `mine` (metrics + SZZ
labels, default options) and PyDriller computing only per-commit added/deleted lines over the same commits
(`include_refs=True`: every ref, as `mine --refs all` walks). Each command runs in its own process; peak
RSS is sampled over the whole process tree, workers included. PyDriller is installed into its own venv
(/tmp/commitrisk-pydriller-venv): a benchmark-only dependency, never the project's.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import publish, table  # noqa: E402

SHARED_REPOS = ROOT.parent / "shared" / "repos"
PYDRILLER_VENV = Path("/tmp/commitrisk-pydriller-venv")
PYDRILLER_SCRIPT = """
import sys
from pydriller import Repository
n = added = deleted = 0
for commit in Repository(sys.argv[1], include_refs=True).traverse_commits():
    added += commit.insertions
    deleted += commit.deletions
    n += 1
print(n, added, deleted)
"""


def _tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants, in KiB."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = int(fields[21]) * page_kib
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total


@dataclass
class Run:
    """The best of a command's rounds: wall and CPU seconds (all processes), peak tree RSS, output."""

    wall: float
    cpu: float
    peak_mib: int
    stdout: str
    stderr: str


def measure(command: list[str], cwd: Path = ROOT) -> Run:
    """Run a command once: wall seconds, CPU seconds of it and its children, peak tree RSS, its output."""
    before = os.times()
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_kib(proc.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    after = os.times()
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(command)} failed: {err.strip().splitlines()[-1:]}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return Run(wall, cpu, peak // 1024, out, err)


def pydriller_python() -> Path:
    """The benchmark-only venv's python, created on first use."""
    python = PYDRILLER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PYDRILLER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "pydriller"], check=True)
    return python


def repositories(names: list[str], commits: int, repo_dir: Path) -> list[tuple[str, Path]]:
    """(name, git dir) of each benchmark repository, built or cloned once into `repo_dir`."""
    repo_dir.mkdir(parents=True, exist_ok=True)
    found: list[tuple[str, Path]] = []
    for name in names:
        if name == "generated":
            target = repo_dir / f"generated-{commits}"
            if not target.exists():
                from bench.make_repo import build

                began = time.perf_counter()
                build(target, commits, seed=7)
                print(f"built {target} in {time.perf_counter() - began:.0f}s", file=sys.stderr)
        else:
            target = repo_dir / f"{name}.git"
            bundle = SHARED_REPOS / f"{name}.bundle"
            if not target.exists():
                if not bundle.exists():
                    sys.exit(f"error: {bundle}: no such bundle (../shared/repos holds the real repositories)")
                subprocess.run(["git", "clone", "-q", "--mirror", str(bundle), str(target)], check=True)
        found.append((name, target))
    return found


def walked(stderr: str) -> int:
    """The commit count `mine` reports ("walked N new commits")."""
    match = re.search(r"walked (\d+) new commits", stderr)
    return int(match.group(1)) if match else 0


def bench_repository(name: str, repo: Path, rounds: int, pydriller: Path | None) -> tuple[list[list[object]], str]:
    """Table rows for one repository and its ratio line."""
    out = Path(f"/tmp/commitrisk-bench-mine-{name}.csv")
    base = [sys.executable, "-m", "training", "mine", str(repo), "--out", str(out), "--no-state", "--no-progress"]
    commands: dict[str, list[str]] = {"`mine` metrics only": [*base, "--no-labels"], "`mine` metrics + labels": base}
    if pydriller is not None:
        commands["PyDriller added/deleted lines only"] = [str(pydriller), "-c", PYDRILLER_SCRIPT, str(repo)]
    best: dict[str, Run] = {}
    for _ in range(rounds):
        for label, command in commands.items():
            run = measure(command)
            if label not in best or run.wall < best[label].wall:
                best[label] = run
    rows: list[list[object]] = []
    for label, run in best.items():
        count = int(run.stdout.split()[0]) if label.startswith("PyDriller") else walked(run.stderr)
        rows.append([name, label, f"{count:,}", f"{run.wall:.1f}", f"**{count / run.wall:,.0f}**", f"{run.cpu:.1f}",
                     run.peak_mib])  # fmt: skip
    line = ""
    if pydriller is not None:
        reference = best["PyDriller added/deleted lines only"].wall
        line = (f"{name}: `mine` metrics + labels **{reference / best['`mine` metrics + labels'].wall:.1f}×** "
                f"PyDriller's speed, metrics only {reference / best['`mine` metrics only'].wall:.1f}×")  # fmt: skip
    return rows, line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=20_000, help="size of the generated repository")
    parser.add_argument("--repo-dir", type=Path, default=Path("/tmp/commitrisk-bench-repos"))
    parser.add_argument("--only", nargs="+", default=["generated", "HikariCP", "jedis"])
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds; the best wall time counts")
    parser.add_argument("--skip-pydriller", action="store_true")
    parser.add_argument("--no-append", action="store_true", help="print only, do not append to BENCHMARKS.md")
    args = parser.parse_args()
    pydriller = None if args.skip_pydriller else pydriller_python()
    load_before = os.getloadavg()[0]
    rows: list[list[object]] = []
    ratios: list[str] = []
    for name, repo in repositories(args.only, args.commits, args.repo_dir):
        repo_rows, ratio = bench_repository(name, repo, args.rounds, pydriller)
        rows += repo_rows
        ratios.append(ratio)
    header = ["repository", "run", "commits", "wall s", "commits/s", "CPU s (all processes)", "peak RSS MiB"]
    body = table(header, rows)
    if pydriller is not None:
        body += "\n\n" + "; ".join(ratios) + "."
    body += (
        f"\n\nGenerated repository: `bench/make_repo.py --commits {args.commits}`; HikariCP and jedis: "
        "`git clone --mirror` of ../shared/repos (every branch and tag). PyDriller over every ref "
        f"(`include_refs=True`), the commits `mine --refs all` walks. Best of {args.rounds} interleaved "
        f"round(s) per command. 1-min load average {load_before:.2f} at start, {os.getloadavg()[0]:.2f} at end "
        "(2 cores shared with other work: read the ratios, measured in one run)."
    )
    publish("Mining (`bench/mine.py`)", body, args.no_append)


if __name__ == "__main__":
    main()
