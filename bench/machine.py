"""What every benchmark prints and appends: the machine it ran on, and a Markdown table in BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def describe() -> str:
    """One line: CPU model, cores, memory, OS, Python — the context a figure needs to mean anything."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kb = int(
            next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")).split()[1]
        )
        memory = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        memory = "unknown memory"
    try:
        commit = short_commit(BENCHMARKS.parent) or "uncommitted"
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return (f"{cpu}, {os.cpu_count()} cores, {memory}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, commit {commit}; speed index {speed_index():.0f} "
            "(million steps per second of a pure-Python loop, measured as this line was written)")  # fmt: skip


def short_commit(tree: Path) -> str:
    """The short commit checked out in `tree` ("" outside git)."""
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True, timeout=10)
    return done.stdout.strip()


def speed_index(steps: int = 1_000_000) -> float:
    """Million steps of a fixed pure-Python loop per second, best of 3: how fast this shared host runs right now.

    The same hardware here runs Python 3–4× slower in some hours than in others (neighbours' load that the load
    average does not show); absolute figures (start-up seconds, req/s) compare only between runs of similar index.
    """
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(steps):
            total += i
        best = min(best, time.perf_counter() - started)
    return steps / best / 1e6


def table(header: list[str], rows: list[list[object]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def append(title: str, body: str) -> None:
    """Print `body` and append it to BENCHMARKS.md under a dated heading with the machine line."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = f"\n## {title} — {stamp}\n\nMachine: {describe()}\n\n{body}\n"
    print(section)
    if not BENCHMARKS.exists():
        BENCHMARKS.write_text("# Benchmarks\n\nAppended by the scripts in `bench/`; newest sections last.\n")
    with BENCHMARKS.open("a") as handle:
        handle.write(section)


def publish(title: str, body: str, no_append: bool) -> None:
    """`append` the section, or with `no_append` (a trial run) only print its body."""
    if no_append:
        print(body)
    else:
        append(title, body)


def load_span(before: float) -> str:
    """ "1-min load average B at start, E at end": the load a run shared the machine with."""
    return f"1-min load average {before:.1f} at start, {os.getloadavg()[0]:.1f} at end"
