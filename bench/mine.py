"""Mining benchmark: commits/s and peak RSS of `commitrisk mine`, against PyDriller's line counts.

    .venv/bin/python -m bench.mine [--commits 20000] [--repo-dir DIR] [--skip-pydriller]

Runs, each in its own process (peak RSS sampled over the whole process tree, workers included):
metrics only (`--no-labels`) and metrics + SZZ labels, on a generated repository (bench/make_repo.py,
built once and reused) and on this project's own history; then PyDriller computing only per-commit
added/deleted lines on the generated repository. PyDriller is installed into its own venv
(/tmp/commitrisk-pydriller-venv): it is a benchmark-only dependency, never the project's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.machine import append, table  # noqa: E402

PYDRILLER_VENV = Path("/tmp/commitrisk-pydriller-venv")
PYDRILLER_SCRIPT = """
import sys
from pydriller import Repository
n = added = deleted = 0
for commit in Repository(sys.argv[1]).traverse_commits():
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


def measure(command: list[str], cwd: Path = ROOT) -> tuple[float, float, int, str]:
    """Run a command: wall seconds, CPU seconds (all processes), peak tree RSS in MiB, stdout."""
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
    return wall, cpu, peak // 1024, out


def commit_count(repo: Path) -> int:
    """Commits reachable from any ref (what `mine --branches all` walks)."""
    done = subprocess.run(["git", "-C", str(repo), "rev-list", "--all", "--count"], capture_output=True, text=True)
    return int(done.stdout.strip() or 0)


def mine_rows(name: str, repo: Path, commits: int, out: Path) -> list[list[object]]:
    """Two runs on one repository: metrics only, and metrics + labels."""
    rows: list[list[object]] = []
    for mode, flags in (("metrics only", ["--no-labels"]), ("metrics + labels", [])):
        command = [sys.executable, "-m", "training", "mine", str(repo), "--out", str(out), "--no-state",
                   "--no-progress", *flags]  # fmt: skip
        wall, cpu, peak, _ = measure(command)
        rows.append([name, f"`mine` {mode}", f"{commits:,}", f"{wall:.1f}", f"**{commits / wall:,.0f}**",
                     f"{cpu:.1f}", peak])  # fmt: skip
    return rows


def pydriller_row(repo: Path, commits: int) -> list[object]:
    """PyDriller's per-commit added/deleted lines (its cheapest useful query) on the same repository."""
    python = PYDRILLER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PYDRILLER_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "pydriller"], check=True)
    wall, cpu, peak, out = measure([str(python), "-c", PYDRILLER_SCRIPT, str(repo)])
    walked = int(out.split()[0])
    return ["generated", "PyDriller added/deleted lines only", f"{walked:,}", f"{wall:.1f}",
            f"**{walked / wall:,.0f}**", f"{cpu:.1f}", peak]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=20_000)
    parser.add_argument("--repo-dir", type=Path, default=Path("/tmp/commitrisk-bench-repo"))
    parser.add_argument("--skip-pydriller", action="store_true")
    args = parser.parse_args()
    target = args.repo_dir.with_name(f"{args.repo_dir.name}-{args.commits}")
    if not target.exists():
        from bench.make_repo import build

        began = time.perf_counter()
        build(target, args.commits, seed=7)
        print(f"built {target} in {time.perf_counter() - began:.0f}s", file=sys.stderr)
    out = Path("/tmp/commitrisk-bench-mine.csv")
    generated = commit_count(target)
    rows = mine_rows("generated", target, generated, out)
    rows += mine_rows("this project", ROOT, commit_count(ROOT), out)
    if not args.skip_pydriller:
        rows.append(pydriller_row(target, generated))
    header = ["repository", "run", "commits", "wall s", "commits/s", "CPU s (all processes)", "peak RSS MiB"]
    body = table(header, rows)
    if not args.skip_pydriller:
        speedup = float(rows[0][4].strip("*").replace(",", "")) / float(rows[-1][4].strip("*").replace(",", ""))
        body += f"\n\n`mine` metrics only vs PyDriller line counts: **{speedup:.1f}×**."
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    body += (
        f"\n\nGenerated repository: `bench/make_repo.py --commits {args.commits}` ({generated:,} commits "
        "incl. merges, repacked). Peak RSS: whole process tree (diff and blame workers included), sampled "
        f"every 50 ms. Load average at the end: {load} (the machine may be shared)."
    )
    append("Mining (`bench/mine.py`)", body)


if __name__ == "__main__":
    main()
