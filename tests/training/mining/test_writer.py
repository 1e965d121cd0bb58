"""Output format: the shared datasets' header, value style and message cut."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from training.mining.writer import COLUMNS, CommitRow, first_line, format_number, write_rows

METRICS = {"ns": 1, "nd": 2, "nf": 3, "entropy": 0.5, "la": 4, "ld": 0, "ha": 1, "hd": 0, "lt": 10.0,
           "ndev": 0, "age": 4.6296296296296294e-05, "nuc": 0, "exp": 2, "rexp": 1.0, "sexp": 0}  # fmt: skip


def test_columns_are_the_shared_datasets_header(shared_commits_dir: Path) -> None:
    with (shared_commits_dir / "HikariCP.csv").open(encoding="utf-8") as handle:
        assert tuple(next(csv.reader(handle))) == COLUMNS


def test_first_line_is_cut_to_70_characters_like_the_datasets() -> None:
    assert first_line("short\n\nbody") == "short"
    assert first_line("x" * 70) == "x" * 70
    assert first_line("x" * 71) == "x" * 69 + "…"
    # a cut that ends in spaces drops them (the datasets hold 69-character messages ending in '…')
    assert first_line("a" * 68 + " word and more") == "a" * 68 + "…"
    assert first_line("") == ""
    assert first_line("  leading kept\r\nnext") == "  leading kept"


def test_numbers_look_like_the_datasets() -> None:
    assert format_number(3) == "3"
    assert format_number(1.0) == "1"
    assert format_number(0.0) == "0"
    assert format_number(159.0625) == "159.0625"
    assert format_number(4.6296296296296294e-05) == "4.6296296296296294e-05"


def test_rows_are_sorted_by_time_and_quoted_safely(tmp_path: Path) -> None:
    late = CommitRow("b" * 40, 20, "Bob", "b@x", 'say "hi", ok', True, ["a,b.py", "c.py"], METRICS)
    early = CommitRow("a" * 40, 10, "Ann", "a@x", "first", False, ["x.py"], METRICS)
    out = tmp_path / "out" / "commits.csv"
    assert write_rows(out, [late, early], "repo", {"a" * 40: ["b" * 40]}) == 2
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["commit_hash"] for r in rows] == ["a" * 40, "b" * 40]
    first, second = rows
    assert (first["commit_id"], first["buggy"], first["fixed_by"], first["is_fix_commit"]) == (
        "repo_" + "a" * 40, "true", "b" * 40, "false",
    )  # fmt: skip
    assert (second["commit_message"], second["files"], second["files_count"]) == (
        'say "hi", ok',
        "a,b.py;c.py",
        "2",
    )
    assert (second["buggy"], second["fixed_by"], second["bug_potential"]) == ("false", "", "")
    assert [second[m] for m in ("entropy", "lt", "age", "rexp")] == [
        "0.5",
        "10",
        "4.6296296296296294e-05",
        "1",
    ]


def test_a_failed_write_names_the_output_and_leaves_no_temp_file(tmp_path: Path) -> None:
    row = CommitRow("a" * 40, 10, "Ann", "a@x", "first", False, ["x.py"], METRICS)
    target = tmp_path / "commits.csv"
    target.mkdir()  # the final rename cannot replace a directory
    with pytest.raises(OSError) as caught:
        write_rows(target, [row], "repo", {})
    assert caught.value.filename == str(target)
    assert [p.name for p in tmp_path.iterdir()] == ["commits.csv"]
