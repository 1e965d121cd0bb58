"""The page process's entry (`python -m app.ui.server SOCKET WORKER_PID NICENESS`), started by app/ui/process.py.

It serves the pages-only app (`create_app(..., pages_only=True)`) on the worker's private Unix socket, at lower CPU
priority than scoring, and dies with the worker that started it. A module of its own because it builds the app:
app/main.py imports app/ui/process.py, so the entry cannot live there without an import cycle.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Sequence

PR_SET_PDEATHSIG = 1  # prctl(2)
KEEP_ALIVE_SECONDS = 600


def settle(worker: int, nice: int) -> bool:
    """Lower this process's priority to `nice` (never raise it) and ask for SIGKILL when its parent dies; False when
    the parent is no longer `worker` (it died before the request took effect)."""
    # Absolute niceness: a worker already niced keeps the page process at least as nice as itself.
    os.setpriority(os.PRIO_PROCESS, 0, max(nice, os.getpriority(os.PRIO_PROCESS, 0)))
    with contextlib.suppress(OSError, AttributeError):  # not Linux: no such call (the worker's shutdown stops it)
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    return os.getppid() == worker


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the pages on SOCKET for worker WORKER_PID at NICENESS; return at once when that worker is gone."""
    socket, worker, nice = (argv if argv is not None else sys.argv[1:])[:3]
    if not settle(int(worker), int(nice)):
        return
    import uvicorn

    from app.main import create_app
    from app.settings import Settings

    # Only the worker connects, over a kept-alive channel (app/ui/channel.py): no reason to drop its idle connections
    # after uvicorn's default 5 s and make the next page pay a new connection.
    uvicorn.run(create_app(Settings(), pages_only=True), uds=socket, access_log=False, log_level="warning",
                timeout_keep_alive=KEEP_ALIVE_SECONDS)  # fmt: skip


if __name__ == "__main__":
    main()
