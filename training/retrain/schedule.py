"""The long-running trainer: `commitrisk retrain --every 1d` runs one retrain per period until SIGTERM.

Each wait is jittered so several trainers (or a restart storm) do not hit the database at the same second;
the trainer lock still guarantees that only one of them publishes. SIGTERM/SIGINT during a wait stop at
once; during a run they stop after it — publishing is atomic, so even a SIGKILL at the end of the grace
period leaves only an ignored staging directory behind.
"""

from __future__ import annotations

import random
import re
import signal
import threading
from collections.abc import Callable
from types import FrameType

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0}


def parse_every(text: str) -> float:
    """'90s', '15m', '6h', '1d', '1.5d' → seconds; ValueError for anything else or a period below 1 s."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if match is None:
        raise ValueError(f"{text!r} is not a period like 90s, 15m, 6h or 1d")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds < 1:
        raise ValueError(f"{text!r}: the period must be at least 1 second")
    return seconds


def jittered(seconds: float, jitter: float, rng: random.Random) -> float:
    """`seconds` ± up to `jitter` of itself (jitter in [0, 1))."""
    if not 0 <= jitter < 1:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    return seconds * (1 + rng.uniform(-jitter, jitter))


def install_stop(stop: threading.Event, log: Callable[[str], None]) -> None:
    """SIGTERM and SIGINT set `stop` (main thread only, as Python requires for signal handlers)."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        log(f"received {signal.Signals(signum).name}: stopping after the current step")
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_every(
    seconds: float,
    once: Callable[[], None],
    stop: threading.Event,
    *,
    jitter: float = 0.1,
    log: Callable[[str], None] = print,
    seed: int | None = None,
) -> int:
    """Call `once` now and then every jittered period until `stop` is set; return the number of runs."""
    rng = random.Random(seed)
    runs = 0
    while not stop.is_set():
        try:
            once()
        except Exception as exc:  # one failed run (database down, disk full) must not end the trainer
            log(f"retrain run failed: {type(exc).__name__}: {exc}")
        runs += 1
        wait = jittered(seconds, jitter, rng)
        log(f"next retrain check in {wait:.0f} s")
        stop.wait(wait)
    log(f"trainer stopped after {runs} run(s)")
    return runs
