"""Mining a whole repository into a CSV (continuing a state) and one commit's row, on real git repositories."""

from __future__ import annotations

import csv
import pickle
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT, GitScript, blobless_clone, build_history
from training.mining.dataset import mine, mine_commit, parse_since
from training.mining.repository import MiningError, open_repository
from training.mining.state import FORMAT, MiningState, load_state
from training.mining.writer import COLUMNS


def read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        return list(reader)


def grow(script: GitScript, start_day: int) -> None:
    """More history on top of build_history: a branch off an old commit is *not* made here."""
    script.write("lib/Helpers.py", script.read("lib/Helpers.py").replace("h1 = 1\n", ""))
    script.commit("Helper off-by-one fix", "bob@x.org", start_day)  # blames c8 (which added h1)
    script.switch("topic", create=True)
    script.write("src/core/App.java", script.read("src/core/App.java") + "int a99 = 99;\n")
    script.commit("Topic work", "carol@x.org", start_day + 1)
    script.switch("main")
    script.merge("topic", "Merge topic", "bob@x.org", start_day + 2)


def commit_count(script: GitScript) -> int:
    return int(script.git("rev-list", "--all", "--count"))


def test_a_second_mine_continues_and_equals_a_full_mine(script: GitScript, tmp_path: Path) -> None:
    sha = build_history(script)
    state, out = tmp_path / "mine.state", tmp_path / "part.csv"
    first = mine(script.path, out, state_path=state)
    assert (first.walked, first.written, first.empty) == (commit_count(script), 14, False)
    assert len(read(out)) == 14 and state.exists()
    before = commit_count(script)
    grow(script, 20)
    second = mine(script.path, out, state_path=state)
    assert second.walked == commit_count(script) - before == 3  # only the new commits are walked
    full = tmp_path / "full.csv"
    assert mine(script.path, full).written == 16
    assert out.read_bytes() == full.read_bytes()
    rows = {r["commit_hash"]: r for r in read(full)}
    assert rows[sha["c8"]]["buggy"] == "true"  # labelled by a fix mined in the second run
    fix = next(h for h, r in rows.items() if r["commit_message"] == "Helper off-by-one fix")
    assert rows[sha["c8"]]["fixed_by"] == fix


def test_a_branch_off_an_old_commit_falls_back_to_a_full_mine(script: GitScript, tmp_path: Path) -> None:
    sha = build_history(script)
    state, out = tmp_path / "mine.state", tmp_path / "out.csv"
    mine(script.path, out, state_path=state)
    script.git("branch", "old", sha["c5"])
    script.switch("old")
    script.write("src/core/App.java", script.read("src/core/App.java") + "int late = 1;\n")
    script.commit("Late work on an old base", "dave@x.org", 30)
    notes: list[str] = []
    again = mine(script.path, out, state_path=state, note=notes.append)
    assert len(notes) == 1 and "re-mining" in notes[0]
    assert again.walked == commit_count(script)  # the whole history, from scratch
    full = tmp_path / "full.csv"
    mine(script.path, full)
    assert out.read_bytes() == full.read_bytes()


def test_a_state_mined_with_other_options_is_not_continued(script: GitScript, tmp_path: Path) -> None:
    build_history(script)
    state, out = tmp_path / "mine.state", tmp_path / "out.csv"
    mine(script.path, out, state_path=state, labels=False)
    notes: list[str] = []
    again = mine(script.path, out, state_path=state, note=notes.append)
    assert notes == [f"{state}: mined with other options; mining from scratch"]
    assert again.walked == commit_count(script)
    assert any(r["buggy"] == "true" for r in read(out))  # this time with labels
    quiet: list[str] = []
    assert mine(script.path, out, state_path=state, note=quiet.append).walked == 0 and quiet == []


def test_a_deleted_branch_disappears_from_a_continued_mine(script: GitScript, tmp_path: Path) -> None:
    sha = build_history(script)
    script.switch("doomed", create=True)
    text = script.read("src/core/App.java").splitlines(keepends=True)
    script.write("src/core/App.java", "".join(text[:3] + text[4:]))  # deletes line 4 (from c1)
    doomed = script.commit("A fix of a4 on a doomed branch", "bob@x.org", 20)
    script.switch("main")
    state, out = tmp_path / "mine.state", tmp_path / "out.csv"
    mine(script.path, out, state_path=state)
    assert {r["commit_hash"]: r["fixed_by"] for r in read(out)}[sha["c1"]] == f"{sha['c7']};{doomed}"
    script.git("branch", "-D", "doomed")
    mine(script.path, out, state_path=state)
    full = tmp_path / "full.csv"
    mine(script.path, full)
    assert out.read_bytes() == full.read_bytes()
    assert {r["commit_hash"]: r["fixed_by"] for r in read(out)}[sha["c1"]] == sha["c7"]


def test_options_since_fix_list_and_refs(script: GitScript, tmp_path: Path) -> None:
    sha = build_history(script)
    fixes = tmp_path / "fixes.txt"
    fixes.write_text(f"# tracker\n{sha['c13']}\n")
    out = tmp_path / "out.csv"
    result = mine(script.path, out, since="2020-09-26", fix_shas=fixes, repository_id="demo")
    rows = read(out)
    assert result.written == len(rows) == 4
    assert {r["commit_hash"] for r in rows} == {sha[n] for n in ("c13", "c14", "c16", "c17")}
    assert {r["commit_hash"] for r in rows if r["is_fix_commit"] == "true"} == {sha["c13"]}
    assert all(r["commit_id"] == f"demo_{r['commit_hash']}" for r in rows)
    script.git("branch", "-D", "feature", "ff")
    script.switch("side", create=True)
    script.write("side.py", "x = 1\n")
    side = script.commit("side", "e@x.org", 40)
    script.switch("main")
    mine(script.path, out, refs="HEAD")
    assert side not in {r["commit_hash"] for r in read(out)}
    mine(script.path, out, refs="all", labels=False)
    assert side in {r["commit_hash"] for r in read(out)}
    assert all(r["buggy"] == "false" for r in read(out))  # labels=False


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("2020-09-26", 1_601_078_400), ("2020-09-26T12:00", 1_601_121_600), ("2020-09-26T12:00:00+02:00", 1_601_114_400)],
)
def test_since_is_an_iso_date_in_utc_unless_it_has_an_offset(value: str, seconds: int) -> None:
    assert parse_since(value) == seconds


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"since": "last week"}, "--since: 'last week' is not an ISO date"),
     ({"fix_shas": Path("/nonexistent/fixes.txt")}, "/nonexistent/fixes.txt: "),
     ({"refs": "both"}, "--refs: expected one of all, branches, tags, HEAD, got 'both'"),
     ({"fix_rule": "magic"}, "--fix-rule: expected one of datasets, keywords, listed, got 'magic'"),
     ({"szz": "loose"}, "--szz: expected one of strict, plain, got 'loose'"),
     ({"fix_rule": "listed"}, "--fix-rule: 'listed' marks only the fixes of --fix-shas FILE")],
)  # fmt: skip
def test_bad_options_are_mining_errors(script: GitScript, tmp_path: Path, kwargs: dict, message: str) -> None:
    script.write("a.py", "x = 1\n")
    script.commit("c", "a@x.org", 0)
    with pytest.raises(MiningError) as caught:
        mine(script.path, tmp_path / "o.csv", **kwargs)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert not (tmp_path / "o.csv").exists()


def test_an_unwritable_output_is_a_mining_error_naming_it(script: GitScript, tmp_path: Path) -> None:
    script.write("a.py", "x = 1\n")
    script.commit("c", "a@x.org", 0)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(MiningError, match=f"^{blocker}"):
        mine(script.path, blocker / "out.csv")


def test_not_a_repository_shallow_clones_and_foreign_state_files_are_refused(script: GitScript, tmp_path: Path) -> None:
    with pytest.raises(MiningError, match=f"^{tmp_path}: not a git repository$"):
        mine(tmp_path, tmp_path / "o.csv")
    with pytest.raises(MiningError, match="no such directory"):
        mine(tmp_path / "missing", tmp_path / "o.csv")
    for day in range(2):
        script.write("a.py", f"x = {day}\n")
        script.commit("c", "a@x.org", day)
    clone = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{script.path}", str(clone)], check=True)
    with pytest.raises(MiningError, match="shallow clone"):
        mine_commit(clone)
    state = tmp_path / "bad.state"
    state.write_text("junk")
    with pytest.raises(MiningError, match="not a commitrisk mining state file"):
        mine(script.path, tmp_path / "o.csv", state_path=state)


def test_a_repository_without_commits_writes_the_header_only(script: GitScript, tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    result = mine(script.path, out, state_path=tmp_path / "s")
    assert (result.walked, result.written, result.empty) == (0, 0, True)
    assert read(out) == []
    with pytest.raises(MiningError, match="no commits yet"):
        mine_commit(script.path)  # nothing to score is an error for score


def test_mining_this_projects_own_repository(tmp_path: Path) -> None:
    try:
        repo = open_repository(ROOT)
    except MiningError as exc:  # e.g. a CI checkout made with --depth 1
        pytest.skip(str(exc))
    out = tmp_path / "own.csv"
    mine(ROOT, out)
    rows = read(out)
    if not repo.is_empty and not repo.head_is_unborn:
        assert all(repo.get(r["commit_hash"]) is not None for r in rows)
        assert all(int(r["nf"]) >= 1 for r in rows)


def test_one_commit_is_mined_for_scoring(script: GitScript) -> None:
    sha = build_history(script)
    head = mine_commit(script.path, repository_id="demo")
    assert (head.sha, head.repository_id, head.merge) == (sha["c17"], "demo", False)
    assert head.row is not None and (head.row.metrics["la"], head.row.metrics["exp"]) == (2, 6)
    assert mine_commit(script.path, rev=sha["c7"]).row.metrics["nuc"] == 5  # type: ignore[union-attr]
    merge = mine_commit(script.path, rev=sha["m12"])
    assert merge.merge and merge.row is None  # a merge: nothing to score
    assert mine_commit(script.path).repository_id == "repo"  # the directory name by default
    with pytest.raises(MiningError, match=r"^--rev: 'nope' names no commit"):
        mine_commit(script.path, rev="nope")


def test_scoring_reuses_the_mining_state(script: GitScript, tmp_path: Path) -> None:
    sha = build_history(script)
    state = tmp_path / "mine.state"
    mine(script.path, tmp_path / "o.csv", state_path=state)
    script.write("lib/Helpers.py", script.read("lib/Helpers.py") + "h10 = 10\n")
    new = script.commit("More helpers", "alice@x.org", 19)
    mined = mine_commit(script.path, state_path=state)
    assert mined.sha == new and mined.row is not None
    assert mined.row.metrics["nuc"] == 6  # the history comes from the state, continued by one commit
    old = mine_commit(script.path, rev=sha["c16"], state_path=state)
    assert old.row is not None and old.row.metrics["exp"] == 8
    state.write_text("junk")
    with pytest.raises(MiningError, match="not a commitrisk mining state file"):
        mine_commit(script.path, state_path=state)


def test_a_blobless_clone_is_mined_like_the_full_repository(script: GitScript, tmp_path: Path) -> None:
    build_history(script)
    clone = blobless_clone(script, tmp_path / "clone.git")
    notes: list[str] = []
    mine(clone, tmp_path / "clone.csv", repository_id="demo", note=notes.append)
    mine(script.path, tmp_path / "full.csv", repository_id="demo")
    assert (tmp_path / "clone.csv").read_bytes() == (tmp_path / "full.csv").read_bytes()
    assert len(notes) == 1 and notes[0].startswith("partial clone: fetched ")


def test_an_object_that_cannot_be_had_is_one_error_and_nothing_is_written(script: GitScript, tmp_path: Path) -> None:
    build_history(script)
    clone = blobless_clone(script, tmp_path / "clone.git")
    subprocess.run(["git", "--git-dir", str(clone), "remote", "set-url", "origin", str(tmp_path / "gone")],
                   check=True)  # fmt: skip
    out = tmp_path / "out" / "commits.csv"
    with pytest.raises(MiningError) as caught:
        mine(clone, out, state_path=tmp_path / "out" / "mine.state")
    message = str(caught.value)
    assert message.startswith(f"{clone}: commit ") and "object " in message and "\n" not in message
    assert not (tmp_path / "out").exists()  # no CSV, no state, no temp file


def test_a_missing_object_in_a_complete_clone_names_commit_and_object(script: GitScript, tmp_path: Path) -> None:
    script.write("a.py", "x = 1\n")
    sha = script.commit("c", "a@x.org", 0)
    blob = script.git("rev-parse", f"{sha}:a.py")
    (script.path / ".git" / "objects" / blob[:2] / blob[2:]).unlink()  # a damaged clone, no promisor
    with pytest.raises(MiningError, match=f"^{script.path}: commit {sha}: object {blob} is missing"):
        mine(script.path, tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()


def test_an_output_or_state_path_that_is_a_directory_is_refused_cleanly(script: GitScript, tmp_path: Path) -> None:
    script.write("a.py", "x = 1\n")
    script.commit("c", "a@x.org", 0)
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(MiningError, match=f"^{folder}: is a directory \\(--out names the file to write\\)$"):
        mine(script.path, folder)
    with pytest.raises(MiningError, match=f"^{folder}: is a directory \\(--state names the file to write\\)$"):
        mine(script.path, tmp_path / "o.csv", state_path=folder)
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["folder", "repo"]


def test_options_that_change_labels_re_mine_and_the_listed_rule_takes_the_list_only(
    script: GitScript, tmp_path: Path
) -> None:
    sha = build_history(script)
    fixes = tmp_path / "fixes.txt"
    fixes.write_text(f"{sha['c13']}\n")
    out, state = tmp_path / "o.csv", tmp_path / "s.state"
    mine(script.path, out, state_path=state)
    notes: list[str] = []
    again = mine(script.path, out, state_path=state, fix_shas=fixes, fix_rule="listed", szz="plain", note=notes.append)
    assert again.walked == commit_count(script) and notes == [f"{state}: mined with other options; mining from scratch"]
    assert {r["commit_hash"] for r in read(out) if r["is_fix_commit"] == "true"} == {sha["c13"]}


def test_a_state_of_an_older_version_is_mined_again_and_replaced(script: GitScript, tmp_path: Path) -> None:
    build_history(script)
    out, state = tmp_path / "o.csv", tmp_path / "s.state"
    # as the versions before the format line wrote it (format 5, the last of them)
    state.write_bytes(b"commitrisk-mine-state\n" + pickle.dumps((5, MiningState("all", True))))
    notes: list[str] = []
    result = mine(script.path, out, state_path=state, note=notes.append)
    assert result.walked == commit_count(script)
    assert notes == [f"{state}: mining state format 1-5, expected {FORMAT} (another commitrisk version); "
                     "mining from scratch"]  # fmt: skip
    assert load_state(state).rows  # replaced by this version's state
    full = tmp_path / "full.csv"
    mine(script.path, full)
    assert out.read_bytes() == full.read_bytes()


def test_the_fix_rule_decides_which_messages_are_fixes(script: GitScript, tmp_path: Path) -> None:
    sha = build_history(script)
    default, keywords = tmp_path / "d.csv", tmp_path / "k.csv"
    mine(script.path, default)
    mine(script.path, keywords, fix_rule="keywords")
    fixes = {p: {r["commit_hash"] for r in read(p) if r["is_fix_commit"] == "true"} for p in (default, keywords)}
    assert fixes[default] == {sha["c7"]}  # "Fix wrong value in App": the datasets' rule finds "wrong"
    assert fixes[keywords] == {sha["c7"], sha["c9"]}  # "Correct the helper": METRICS.md's keywords ignore case


class Killed(Exception):
    """Stands for the process being killed right after a checkpoint."""


@pytest.mark.parametrize("every", [1, 2, 5])
def test_a_checkpointed_mine_equals_a_full_mine(script: GitScript, tmp_path: Path, every: int) -> None:
    build_history(script)
    grow(script, 20)
    full, sliced = tmp_path / "full.csv", tmp_path / "sliced.csv"
    mine(script.path, full)
    result = mine(script.path, sliced, state_path=tmp_path / "s.state", checkpoint=every)
    assert result.walked == commit_count(script)
    assert sliced.read_bytes() == full.read_bytes()


def test_a_mine_killed_after_a_checkpoint_continues_from_it(tmp_path: Path) -> None:
    from bench.make_repo import build
    from training.mining.dataset import walk_all
    from training.mining.repository import start_points
    from training.mining.state import MiningState, load_state, save_state

    repo_path = tmp_path / "generated"
    build(repo_path, 400, seed=3)  # merges of feature branches cross the slice boundaries
    full = tmp_path / "full.csv"
    mine(repo_path, full)
    state_path, saves = tmp_path / "s.state", []

    def save_then_die(state: MiningState) -> None:
        save_state(state_path, state)
        saves.append(1)
        if len(saves) == 3:
            raise Killed

    repo = open_repository(repo_path)
    with pytest.raises(Killed):
        walk_all(
            repo, MiningState("all", True), start_points(repo, "all"), 1, True, False, save=save_then_die, every=37
        )
    assert len(load_state(state_path).history.shas) == 3 * 37
    out = tmp_path / "resumed.csv"
    resumed = mine(repo_path, out, state_path=state_path, checkpoint=37)
    assert resumed.walked == 400 - 3 * 37  # only what the killed run had not checkpointed
    assert out.read_bytes() == full.read_bytes()
    assert not load_state(state_path).history.pending  # nothing left over from the killed walk
