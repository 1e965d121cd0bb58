"""SZZ blame jobs in the helper process: answers, the strict rule's early stop, errors, stopping."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import GitScript
from training.mining.blamer import Blamer
from training.mining.repository import open_repository
from training.mining.szz import TANGLED, BlameError, blame_lines

DAY = 86400


def _history(script: GitScript, commits: int) -> list[str]:
    """One file whose line i was last changed by commit i (a day apart); the SHAs in order."""
    lines = [f"v{i} = 0\n" for i in range(commits)]
    script.write("a.py", "".join(lines))
    shas = [script.commit("add", "a@x.org", 0)]
    for i in range(1, commits):
        lines[i] = f"v{i} = {i}\n"
        script.write("a.py", "".join(lines))
        shas.append(script.commit(f"change v{i}", "b@x.org", i))
    return shas


def _time(script: GitScript, sha: str) -> int:
    return int(script.git("show", "-s", "--format=%at", sha))


def test_answers_come_in_submission_order_as_blame_lines_gives_them(script: GitScript) -> None:
    shas = _history(script, 4)
    git_dir = open_repository(script.path).path
    jobs = [
        ("f" * 40, shas[-1], [(b"a.py", [(2, 1), (4, 1)])], None),
        ("e" * 40, shas[-1], [(b"a.py", [(1, 1)])], None),
    ]
    blamer = Blamer(git_dir, 2, False, [])
    try:
        for job in jobs:
            blamer.submit(job, _time(script, shas[-1]) + DAY)
        assert list(blamer.results()) == [blame_lines(git_dir, job) for job in jobs]
    finally:
        blamer.close()


def test_strict_stops_at_the_first_file_that_shows_the_fix_tangled(script: GitScript) -> None:
    shas = _history(script, TANGLED + 2)
    git_dir = open_repository(script.path).path
    fix_time = _time(script, shas[-1]) + DAY
    # Every line blamed is a row inside the window: after a.py the fix is tangled, missing.py (which would
    # fail) is never blamed. Without the row times, nothing is known to be tangled and it is blamed.
    job = ("f" * 40, shas[-1], [(b"a.py", [(1, TANGLED + 2)]), (b"missing.py", [(1, 1)])], None)
    blamer = Blamer(git_dir, 1, True, [(sha, _time(script, sha)) for sha in shas])
    try:
        blamer.submit(job, fix_time)
        assert list(blamer.results()) == [("f" * 40, sorted(shas))]
    finally:
        blamer.close()
    blamer = Blamer(git_dir, 1, True, [])
    try:
        blamer.submit(job, fix_time)
        with pytest.raises(BlameError, match=r"^git blame missing.py at "):
            list(blamer.results())
    finally:
        blamer.close()


def test_close_stops_the_helper_and_removes_its_scratch_directory(script: GitScript) -> None:
    shas = _history(script, 2)
    blamer = Blamer(open_repository(script.path).path, 1, False, [])
    blamer.submit(("f" * 40, shas[-1], [(b"a.py", [(1, 1)])], None), 0)
    scratch = Path(blamer._scratch)
    blamer.close()  # without asking for results: the walk failed
    assert not blamer._process.is_alive()
    assert not scratch.exists()


def test_a_helper_that_died_is_one_blame_error(script: GitScript) -> None:
    shas = _history(script, 2)
    blamer = Blamer(open_repository(script.path).path, 1, False, [])
    try:
        blamer._process.kill()  # as the kernel's out-of-memory killer would
        blamer._process.join()
        with pytest.raises(BlameError, match=r"^the blame process ended unexpectedly$"):
            blamer.submit(("f" * 40, shas[-1], [(b"a.py", [(1, 1)])], None), 0)
            list(blamer.results())
    finally:
        blamer.close()
