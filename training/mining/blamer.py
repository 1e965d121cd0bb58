"""SZZ blame jobs run while the walk goes on: one helper process driving parallel `git blame` processes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.mining.szz import TANGLED, BlameError, BlameJob, blame_lines, linkable

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

_GONE = "the blame process ended unexpectedly"
RowTimes = list[tuple[str, int]]  # (row SHA, author time): what the strict rule's early stop needs


class Blamer:
    """Runs blame jobs while the walk goes on, in one helper process whose threads each drive a `git blame`.

    A process, not threads of the walking one: the walk keeps the GIL busy, and a thread that waits for a
    child process needs the GIL after every wake-up (spawn, each pipe read, wait) — 800 blames took 2.9 s
    alone and 20 s beside one busy thread. The work happens in the git processes, so the helper's threads
    keep every core busy. A commit-graph with changed-path Bloom filters makes each blame ~3× faster; the
    helper writes it into a private temporary object directory that borrows the repository's objects
    (alternates), so the repository is never touched.
    """

    def __init__(self, git_dir: str, workers: int, strict: bool, times: RowTimes) -> None:
        import multiprocessing

        self._scratch = tempfile.mkdtemp(prefix="commitrisk-blame-")
        context = multiprocessing.get_context("spawn")  # no fork of libgit2 handles or threads
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, git_dir, self._scratch, workers, strict), daemon=True, name="blame"
        )
        self._process.start()
        child.close()
        self._jobs = 0
        self.rows(times)

    def rows(self, times: RowTimes) -> None:
        """Author times of new rows: with the strict rule a job may stop early once these show it tangled."""
        if times:
            self._send(("rows", times))

    def submit(self, job: BlameJob, fix_time: int) -> None:
        """Queue one fix commit's blame; every row it can blame must have been passed to `rows` before."""
        self._send(("job", job, fix_time))
        self._jobs += 1

    def results(self) -> Iterator[tuple[str, list[str]]]:
        """(fix SHA, blamed SHAs) for every job in submission order, waiting as needed; call once."""
        self._send(("done",))
        for _ in range(self._jobs):
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                raise BlameError(_GONE) from None
            if message[0] == "error":
                raise BlameError(message[1])
            yield message[1], message[2]

    def _send(self, message: tuple[Any, ...]) -> None:
        """Hand the helper one message; a helper that died is a BlameError, not a confusing broken pipe."""
        try:
            self._conn.send(message)
        except OSError:  # a broken pipe: the helper died (killed, out of memory)
            raise BlameError(_GONE) from None

    def close(self) -> None:
        """Stop the helper (pending jobs are dropped) and remove the scratch object directory."""
        self._conn.close()  # the helper sees end-of-file, cancels what is queued and exits
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        shutil.rmtree(self._scratch, ignore_errors=True)


def _tangled(times: dict[str, int], fix_time: int) -> Callable[[set[str]], bool]:
    """True once the fix is certainly tangled (szz.inducing would link none): only rows carry labels, and
    every commit a fix can blame is an ancestor, whose row time arrived before the job."""

    def enough(found: set[str]) -> bool:
        return len(linkable(fix_time, {sha: times[sha] for sha in found if sha in times})) > TANGLED

    return enough


def _serve(conn: Connection, git_dir: str, scratch: str, workers: int, strict: bool) -> None:
    """The helper process: take rows and jobs until "done", then answer every job in submission order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the walk's to handle; it then closes us
    times: dict[str, int] = {}
    futures: list[Future[tuple[str, list[str]]]] = []
    with ThreadPoolExecutor(max_workers=max(1, workers) + 1, thread_name_prefix="blame") as pool:
        graph = pool.submit(commit_graph_env, git_dir, Path(scratch))  # jobs queue behind it

        def run(job: BlameJob, enough: Callable[[set[str]], bool] | None) -> tuple[str, list[str]]:
            return blame_lines(git_dir, job, graph.result(), enough)

        try:
            message: tuple[Any, ...] = conn.recv()
            while message[0] != "done":
                if message[0] == "rows":
                    times.update(message[1])
                else:
                    _, job, fix_time = message
                    futures.append(pool.submit(run, job, _tangled(times, fix_time) if strict else None))
                message = conn.recv()
            for future in futures:
                try:
                    fix, found = future.result()
                except BlameError as exc:
                    conn.send(("error", str(exc)))
                    break
                conn.send(("result", fix, found))
        except (EOFError, OSError):
            pass  # the walk stopped (an error, or it has all it needs): drop what is left
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def commit_graph_env(git_dir: str, scratch: Path) -> dict[str, str] | None:
    """Environment for git commands using a fresh commit-graph over the repository's objects; None when
    git cannot write one (older git): blame then simply runs without it."""
    objects = scratch / "objects"
    (objects / "info").mkdir(parents=True)
    (objects / "info" / "alternates").write_text(str((Path(git_dir) / "objects").resolve()) + "\n")
    env = {**os.environ, "GIT_OBJECT_DIRECTORY": str(objects)}
    written = subprocess.run(
        ["git", "--git-dir", git_dir, "commit-graph", "write", "--reachable", "--changed-paths"],
        capture_output=True, env=env, check=False,
    )  # fmt: skip
    return env if written.returncode == 0 else None
