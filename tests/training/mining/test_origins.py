"""Line origins carried along the walk: the arithmetic, and agreement with `git blame` on real histories."""

from __future__ import annotations

import subprocess
from array import array
from pathlib import Path

from tests.support import ALICE, BOB, GitScript, build_history
from training.mining.facts import commit_facts
from training.mining.history import History
from training.mining.language import Classifier
from training.mining.origins import UNKNOWN, added, blamed, carry, combine
from training.mining.repository import open_repository


def a(*values: int) -> array:
    return array("i", values)


def test_carry_keeps_unchanged_lines_and_gives_new_ones_to_the_commit() -> None:
    old = a(1, 1, 2, 2, 3)
    assert carry(old, [(0, 0, 1, 2)], 9) == a(9, 9, 1, 1, 2, 2, 3)  # two lines inserted at the top
    assert carry(old, [(2, 2, 2, 1)], 9) == a(1, 9, 2, 3)  # lines 2-3 replaced by one
    assert carry(old, [(5, 0, 6, 1)], 9) == a(1, 1, 2, 2, 3, 9)  # appended after the last line
    assert carry(old, [(1, 1, 0, 0), (4, 2, 2, 0)], 9) == a(1, 2)  # deletions only
    assert carry(old, [], 9) == old


def test_carry_pads_an_untracked_past_instead_of_shifting_later_lines() -> None:
    # origins known for 2 lines of a file whose hunk says it had at least 5: the gap is UNKNOWN
    assert carry(a(1, 2), [(5, 1, 5, 1)], 9) == a(1, 2, UNKNOWN, UNKNOWN, 9)


def test_added_files_and_blamed_lines() -> None:
    assert added(3, 4) == a(4, 4, 4)
    lines = {"x.py": a(1, UNKNOWN, 2, 3), "y.py": a(5)}
    assert blamed(lines, [("x.py", ((1, 2),)), ("y.py", ((1, 1),)), ("gone.py", ((1, 1),))]) == {1, 5}
    assert blamed(lines, [("x.py", ((3, 5),))]) == {2, 3}  # a range past the end is cut


def test_a_merge_passes_each_line_to_the_first_parent_that_has_it() -> None:
    first = a(1, 1, 1)
    # the merge result: line 1 as in the first parent, line 2 from the side branch, line 3 new in the merge
    side = a(1, 7, 1)
    merged = combine(first, [(2, 1, 2, 1), (3, 0, 4, 1)], [(side, [(3, 0, 4, 1)])], own=8)
    assert merged == a(1, 7, 1, 8)
    assert combine(first, [(3, 0, 4, 1)], [], own=8) == a(1, 1, 1, 8)  # no side parent has it: the merge's


def git_blame(git_dir: Path, commit: str, path: str) -> list[str]:
    out = subprocess.run(["git", "--git-dir", str(git_dir), "blame", "--porcelain", "--root", commit, "--",
                          path.encode("utf-8", "surrogateescape")], capture_output=True, check=True).stdout  # fmt: skip
    shas = []
    for line in out.splitlines():
        head = line.split(b" ")
        if len(head) >= 3 and len(head[0]) == 40 and not line.startswith(b"\t"):
            shas.append(head[0].decode())
    return shas


def assert_origins_match_git_blame(script: GitScript) -> int:
    """Walk every commit with origins on; after each, every tracked file's origins are git blame's answer."""
    git_dir = script.path / ".git"
    order = subprocess.run(["git", "--git-dir", str(git_dir), "rev-list", "--reverse", "--topo-order", "--all"],
                           capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    commits = [(bytes.fromhex(s), [bytes.fromhex(p) for p in script.git("log", "-1", "--format=%P", s).split()])
               for s in order]  # fmt: skip
    repo, classifier, history = open_repository(script.path), Classifier(), History()
    history.plan(commits)
    checked = 0
    for sha, parents in commits:
        fact = commit_facts(repo, classifier, sha, origins=True)
        history.advance(sha, parents, parents[0] if parents else None, [], fact.email, fact.time, fact.changes,
                        keep=True, lines=True)  # fmt: skip
        for path, lines in history.tips[sha].lines.items():
            assert [history.shas[c].hex() for c in lines] == git_blame(git_dir, sha.hex(), path), (sha.hex(), path)
            checked += 1
    return checked


def test_origins_are_git_blames_answer_through_renames_merges_and_whitespace(script: GitScript) -> None:
    build_history(script)  # renames (pure and edited), a whitespace-only edit, a re-added file, two merges
    assert assert_origins_match_git_blame(script) > 40


def test_a_merge_of_two_edits_to_one_file_keeps_both_authors_lines(script: GitScript) -> None:
    script.write("a.py", "".join(f"v{i} = {i}\n" for i in range(10)))
    script.commit("add", ALICE, 0)
    script.switch("side", create=True)
    script.write("a.py", script.read("a.py").replace("v8 = 8", "v8 = 80"))
    script.commit("side edit", BOB, 1)
    script.switch("main")
    script.write("a.py", script.read("a.py").replace("v1 = 1", "v1 = 10"))
    script.commit("main edit", ALICE, 2)
    script.merge("side", "Merge side", ALICE, 3)  # a true three-way merge of a.py
    script.write("a.py", script.read("a.py") + "v10 = 10\n")
    script.commit("after", BOB, 4)
    assert assert_origins_match_git_blame(script) == 5  # a.py after each of the five commits
