"""Rows in the dataset format of ../shared/data/README.md (same columns, same order, same value style)."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from app.contract import FEATURES

COLUMNS: tuple[str, ...] = (
    "commit_id", "author_date", "buggy", "repository_id", "commit_hash", "author_name", "author_email",
    "commit_message", "is_fix_commit", "fixed_by", "files_count", "files", "bug_potential",
    *FEATURES,
)  # fmt: skip

_MESSAGE_WIDTH = 70


@dataclass(slots=True)
class CommitRow:
    """One mined commit: metadata, touched files and the 15 metrics (labels are joined at write time)."""

    sha: str
    author_date: int
    author_name: str
    author_email: str
    message: str  # the first line, already cut
    is_fix: bool
    files: list[str]
    metrics: dict[str, float]


def first_line(message: str) -> str:
    """The message's first line cut to 70 characters, ending with '…' when cut."""
    lines = message.splitlines()
    line = lines[0] if lines else ""
    if len(line) <= _MESSAGE_WIDTH:
        return line
    return line[: _MESSAGE_WIDTH - 1].rstrip() + "…"


def format_number(value: float) -> str:
    """Integers without a decimal point, other floats in Python's shortest round-trip form."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def record(row: CommitRow, repository_id: str, fixed_by: list[str]) -> list[str]:
    """The CSV fields of one row, in COLUMNS order."""
    return [
        f"{repository_id}_{row.sha}",
        str(row.author_date),
        "true" if fixed_by else "false",
        repository_id,
        row.sha,
        row.author_name,
        row.author_email,
        row.message,
        "true" if row.is_fix else "false",
        ";".join(fixed_by),
        str(len(row.files)),
        ";".join(row.files),
        "",
        *(format_number(row.metrics[name]) for name in FEATURES),
    ]


def write_rows(path: Path, rows: Iterable[CommitRow], repository_id: str, fixed_by: dict[str, list[str]]) -> int:
    """Write rows sorted by (author_date, SHA), atomically (temp file then rename); return the count."""
    ordered = sorted(rows, key=lambda r: (r.author_date, r.sha))
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temp.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS)
            for row in ordered:
                writer.writerow(record(row, repository_id, fixed_by.get(row.sha, [])))
        temp.replace(path)
    except OSError as exc:
        temp.unlink(missing_ok=True)  # nothing half-written stays behind
        exc.filename = str(path)  # the error names the file the user asked for, not the temp file
        raise
    return len(ordered)
