"""`commitrisk feedback import`: send late labels from a CSV (the dataset format works) to POST /feedback."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

CHUNK = 5000
TRUE = {"true", "1", "yes", "t", "y"}
FALSE = {"false", "0", "no", "f", "n"}


class FeedbackError(Exception):
    """A label file or a service answer that cannot be used; the message names the file/field."""


def open_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV with a header; the dataset's `files` field can exceed csv's limit."""
    csv.field_size_limit(sys.maxsize)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise FeedbackError(f"{path}: {exc.strerror or exc}") from None
    with handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            raise FeedbackError(f"{path}: empty file")
        for needed in ("commit_id", "buggy"):
            if needed not in reader.fieldnames:
                raise FeedbackError(f"{path}: missing column {needed!r}")
        for row in reader:
            yield reader.line_num, row


def parse_bool(value: str, where: str) -> bool:
    """`true`/`false` (also 1/0, yes/no) → bool."""
    text = value.strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise FeedbackError(f"{where}: buggy: expected true or false, got {value[:20]!r}")


def label_of(row: dict[str, str], where: str) -> dict[str, Any]:
    """One POST /feedback item from a CSV row (dataset columns or commit_id,buggy[,repository,…])."""
    commit_id = (row.get("commit_id") or "").strip()
    if not commit_id:
        raise FeedbackError(f"{where}: commit_id: empty")
    item: dict[str, Any] = {"commit_id": commit_id, "buggy": parse_bool(row.get("buggy") or "", where)}
    repository = row.get("repository") or row.get("repository_id")
    if repository:
        item["repository"] = repository
    if row.get("fixed_by"):
        item["fixed_by"] = row["fixed_by"]
    if row.get("labeled_at"):
        item["labeled_at"] = _timestamp(row["labeled_at"], where)
    return item


def _timestamp(value: str, where: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise FeedbackError(f"{where}: labeled_at: expected Unix seconds or an ISO date") from None


def read_labels(path: Path) -> list[dict[str, Any]]:
    """Every label in a CSV file, validated locally before anything is sent."""
    return [label_of(row, f"{path}:{line}") for line, row in open_rows(path)]


def post_labels(client: httpx.Client, items: list[dict[str, Any]], token: str | None) -> int:
    """POST labels in chunks; the number the service upserted. FeedbackError on a refused chunk."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    upserted = 0
    for start in range(0, len(items), CHUNK):
        response = client.post("/feedback", json=items[start : start + CHUNK], headers=headers)
        if response.status_code != 200:
            raise FeedbackError(f"POST /feedback: {response.status_code} {_message(response)}")
        upserted += int(response.json()["upserted"])
    return upserted


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def import_feedback(path: Path, url: str, token: str | None, timeout: float = 60.0) -> tuple[int, int]:
    """Read and send a label file; (labels read, labels upserted)."""
    items = read_labels(path)
    try:
        with httpx.Client(base_url=url, timeout=timeout) as client:
            return len(items), post_labels(client, items, token)
    except httpx.HTTPError as exc:
        raise FeedbackError(f"{url}: {exc}") from None
