"""The fleet's repository list and one repository's run: clone or path, mined once per refs, resumable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import GitScript, build_history
from training.mining.dataset import mine
from training.mining.fleet import (
    FleetEntry,
    FleetOptions,
    entry_at,
    is_done,
    marker_path,
    mine_entry,
    read_repos,
)
from training.mining.repository import MiningError


def test_the_list_reads_urls_paths_ids_and_comments(tmp_path: Path) -> None:
    listed = tmp_path / "lists" / "repos.txt"
    listed.parent.mkdir()
    listed.write_text(
        "# the fleet\n\nhttps://github.com/o/alpha.git\ngit@github.com:o/beta.git  b2  # renamed\n"
        "../checkouts/gamma\n/srv/delta/ d\n"
    )
    assert read_repos(listed) == [
        FleetEntry("https://github.com/o/alpha.git", "alpha"),
        FleetEntry("git@github.com:o/beta.git", "b2"),
        FleetEntry(str(tmp_path / "lists" / "../checkouts/gamma"), "gamma"),  # relative to the list's folder
        FleetEntry("/srv/delta/", "d"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [("a x\nb x\n", r":2: repository id 'x' already used on line 1$"),
     ("https://h/o/r.git r extra\n", r":1: expected `SOURCE \[ID\]`, got 3 fields$"),
     ("/srv/r ../escape\n", r":1: repository id '../escape' is not a plain file name$"),
     ("/srv/r .hidden\n", r":1: repository id '.hidden' is not a plain file name$")],
)  # fmt: skip
def test_a_bad_list_is_one_error_naming_the_line(tmp_path: Path, text: str, message: str) -> None:
    listed = tmp_path / "repos.txt"
    listed.write_text(text)
    with pytest.raises(MiningError, match=f"^{listed}{message}"):
        read_repos(listed)


def test_a_missing_list_and_an_index_outside_it_are_errors(tmp_path: Path) -> None:
    with pytest.raises(MiningError, match=f"^{tmp_path}/none.txt: No such file"):
        read_repos(tmp_path / "none.txt")
    entries = [FleetEntry("/a", "a"), FleetEntry("/b", "b")]
    assert entry_at(entries, 1, tmp_path) == entries[1]
    with pytest.raises(MiningError, match=r"^--index: 2 is outside .+'s 2 repositories \(0\.\.1\)$"):
        entry_at(entries, 2, tmp_path)


def test_a_path_is_mined_once_per_refs_and_continued_when_they_move(script: GitScript, tmp_path: Path) -> None:
    build_history(script)
    out_dir, options = tmp_path / "data", FleetOptions()
    entry = FleetEntry(str(script.path), "demo")
    first = mine_entry(entry, out_dir, options)
    assert not first.skipped and first.result is not None and first.result.written == 14
    single = tmp_path / "single.csv"
    mine(script.path, single, repository_id="demo")
    assert (out_dir / "demo.csv").read_bytes() == single.read_bytes()  # what mining it alone writes
    marker = json.loads(marker_path(out_dir, "demo").read_text())
    assert marker["walked"] == first.result.walked and marker["options"]["refs"] == "all"
    assert mine_entry(entry, out_dir, options).skipped
    assert mine_entry(entry, out_dir, FleetOptions(workers=2, checkpoint=3)).skipped  # how, not what: still done
    older = {**marker, "format": marker["format"] - 1}  # written by a version with other rules
    marker_path(out_dir, "demo").write_text(json.dumps(older))
    redone = mine_entry(entry, out_dir, options)
    assert not redone.skipped and redone.result is not None
    assert (out_dir / "demo.csv").read_bytes() == single.read_bytes()
    assert mine_entry(entry, out_dir, options).skipped  # the new marker holds
    script.write("src/core/App.java", script.read("src/core/App.java") + "int more = 1;\n")
    script.commit("More", "bob@x.org", 30)
    again = mine_entry(entry, out_dir, options)
    assert not again.skipped and again.result is not None and again.result.walked == 1  # from the state
    relabelled = mine_entry(entry, out_dir, FleetOptions(labels=False))
    assert relabelled.result is not None and relabelled.result.walked > 1  # other options: mined again
    (out_dir / "demo.csv").unlink()
    assert not is_done(out_dir, "demo", json.loads(marker_path(out_dir, "demo").read_text())["tips"],
                       FleetOptions(labels=False))  # fmt: skip


def test_a_url_is_cloned_into_the_cache_and_mined_from_it(script: GitScript, tmp_path: Path) -> None:
    build_history(script)
    out_dir = tmp_path / "data"
    outcome = mine_entry(FleetEntry(f"file://{script.path}", "demo"), out_dir, FleetOptions())
    assert outcome.result is not None and outcome.result.written == 14
    assert (out_dir / ".repos" / "demo.git").is_dir()
    cache = tmp_path / "elsewhere"
    mine_entry(FleetEntry(f"file://{script.path}", "other"), out_dir, FleetOptions(), cache)
    assert (cache / "other.git").is_dir()


def test_a_broken_repository_is_a_mining_error_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "broken").mkdir()
    with pytest.raises(MiningError, match="not a git repository"):
        mine_entry(FleetEntry(str(tmp_path / "broken"), "broken"), tmp_path / "data", FleetOptions())
    assert not (tmp_path / "data" / "broken.csv").exists() and not marker_path(tmp_path / "data", "broken").exists()


def test_train_reads_the_fleet_folder_csvs_only(script: GitScript, tmp_path: Path) -> None:
    from training.data import load, resolve_paths

    build_history(script)
    out_dir = tmp_path / "data"
    mine_entry(FleetEntry(str(script.path), "one"), out_dir, FleetOptions())
    mine_entry(FleetEntry(f"file://{script.path}", "two"), out_dir, FleetOptions())
    # `commitrisk train --data DIR`: states, markers and clones beside the CSVs are not read
    assert [p.name for p in resolve_paths([out_dir])] == ["one.csv", "two.csv"]
    assert len(load([out_dir]).frame) == 28
