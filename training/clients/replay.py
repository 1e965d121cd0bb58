"""The client of `commitrisk replay`: play a labelled dataset against a running service, in time order.

Each commit goes to POST /predict at its (scaled) author time; its label goes to POST /feedback once the
label delay has passed in dataset time — how labels really arrive — so drift and performance can be
watched changing on real data.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from app.contract import FEATURES
from training.clients.feedback import FeedbackError, label_of, open_rows, post_labels

DAY = 86400.0
LABEL_BATCH = 500


@dataclass(frozen=True, slots=True)
class ReplayCommit:
    """One dataset row: when it happened, what /predict gets, what /feedback gets later."""

    time: float
    payload: dict[str, Any]
    label: dict[str, Any]


@dataclass(slots=True)
class ReplaySummary:
    """What a replay sent and what the service answered."""

    predicted: int = 0
    rejected: int = 0
    labels_sent: int = 0
    labels_pending: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def load_commits(path: Path) -> list[ReplayCommit]:
    """Dataset rows sorted by author_date (stable); FeedbackError naming file:line and field."""
    commits = []
    for line, row in open_rows(path):
        where = f"{path}:{line}"
        try:
            at = float(row["author_date"])
            metrics = {name: float(row[name]) for name in FEATURES}
        except KeyError as exc:
            raise FeedbackError(f"{path}: missing column {exc.args[0]!r}") from None
        except ValueError as exc:
            raise FeedbackError(f"{where}: {exc}") from None
        label = label_of(row, where)
        payload = metrics | {"commit_id": label["commit_id"], "author_date": at}
        if "repository" in label:
            payload["repository"] = label["repository"]
        commits.append(ReplayCommit(at, payload, label))
    if not commits:
        raise FeedbackError(f"{path}: no rows")
    return sorted(commits, key=lambda c: c.time)


def events(commits: list[ReplayCommit], label_delay_days: float) -> Iterator[tuple[float, str, ReplayCommit]]:
    """(dataset time, "predict" | "label", commit) in time order; a label at commit time + delay."""
    delay = label_delay_days * DAY
    labels: list[tuple[float, int, ReplayCommit]] = []
    for i, commit in enumerate(commits):
        while labels and labels[0][0] <= commit.time:
            due, _, labelled = heapq.heappop(labels)
            yield due, "label", labelled
        yield commit.time, "predict", commit
        heapq.heappush(labels, (commit.time + delay, i, commit))
    # Labels still immature when the data ends are never sent: in reality they are not known yet.


def replay(
    client: httpx.Client,
    commits: list[ReplayCommit],
    speed: float = 0.0,
    label_delay_days: float = 90.0,
    token: str | None = None,
    on_step: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Send every event; `speed` is dataset seconds per wall second (0 = as fast as the service answers)."""
    summary = ReplaySummary()
    start_wall, start_data = time.monotonic(), commits[0].time
    due: list[dict[str, Any]] = []
    for at, kind, commit in events(commits, label_delay_days):
        if speed > 0:
            wait = start_wall + (at - start_data) / speed - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        if kind == "label":
            due.append(commit.label)
            if len(due) >= LABEL_BATCH:
                summary.labels_sent += post_labels(client, due, token)
                due = []
            continue
        if due:  # labels that matured before this commit reach the service before it is scored
            summary.labels_sent += post_labels(client, due, token)
            due = []
        response = client.post("/predict", json=commit.payload, params={"explain": "false"})
        if response.status_code == 200:
            summary.predicted += 1
        else:
            summary.rejected += 1
            key = str(response.status_code)
            summary.errors[key] = summary.errors.get(key, 0) + 1
            if response.status_code >= 500 or response.status_code in (401, 403, 404):
                raise FeedbackError(f"POST /predict: {response.status_code} {response.text[:200]}")
        if on_step is not None:
            on_step(1)
    if due:
        summary.labels_sent += post_labels(client, due, token)
    summary.labels_pending = len(commits) - summary.labels_sent
    return summary


def run_replay(
    url: str,
    commits: list[ReplayCommit],
    speed: float = 0.0,
    label_delay_days: float = 90.0,
    token: str | None = None,
    on_step: Callable[[int], None] | None = None,
    timeout: float = 60.0,
) -> ReplaySummary:
    """Replay `commits` against the service at `url`; FeedbackError when it cannot be reached or refuses."""
    try:
        with httpx.Client(base_url=url, timeout=timeout) as client:
            return replay(client, commits, speed, label_delay_days, token, on_step)
    except httpx.HTTPError as exc:
        raise FeedbackError(f"{url}: {exc}") from None
