"""Read-only queries over the prediction log for people: a repository's scored commits, one commit's scores,
its label and its shadow scores. Each reads an index: the `(repository, time, risk_band, commit_id)` one for a
repository's lists and counts (tables.py, migration 4), the `(repository, lower(commit_id))` one for a SHA search
(migration 7), `commit_id` ones for one commit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, Select, func, select

from app.contract import FEATURES
from app.monitoring.tables import FEATURE_COLUMNS, feedback, predictions, shadow_predictions

c = predictions.c
_COLUMNS = (c.id, c.time, c.request_id, c.commit_id, c.repository, *FEATURE_COLUMNS, c.probability, c.label,
            c.risk_band, c.model_version, feedback.c.buggy)  # fmt: skip
_N = len(FEATURES)


@dataclass(frozen=True, slots=True)
class LoggedPrediction:
    """One logged answer, with the commit's label once feedback arrived (None until then)."""

    id: int
    time: float
    request_id: str | None
    commit_id: str | None
    repository: str | None
    features: tuple[float, ...]  # FEATURES order, as the client sent them
    probability: float
    label: bool
    risk_band: str
    model_version: int
    buggy: bool | None


@dataclass(frozen=True, slots=True)
class CommitFilter:
    """Which of a repository's predictions to list: a band, a time range [start, end) and a SHA fragment."""

    repository: str
    band: str | None = None
    start: float | None = None
    end: float | None = None
    sha: str | None = None

    def conditions(self, dialect: str) -> list[ColumnElement[bool]]:
        """The WHERE conditions of this filter (the repository first: it leads the index)."""
        found = [c.repository == self.repository]
        if self.band is not None:
            found.append(c.risk_band == self.band)
        if self.start is not None:
            found.append(c.time >= self.start)
        if self.end is not None:
            found.append(c.time < self.end)
        if self.sha:
            found.extend(prefix_conditions(self.sha, dialect))
        return found


def prefix_bounds(text: str) -> tuple[str, str | None]:
    """[low, high): every string starting with `text` and nothing else, in code point order (None: no bound)."""
    for end in range(len(text), 0, -1):
        following = ord(text[end - 1]) + 1
        if following == 0xD800:  # surrogates are no characters: no stored text holds one
            following = 0xE000
        if following <= 0x10FFFF:
            return text, text[: end - 1] + chr(following)
    return text, None


def prefix_conditions(sha: str, dialect: str) -> list[ColumnElement[bool]]:
    """Commit ids starting with `sha` whatever their case, as a range of the (repository, lower(commit_id)) index.

    A range, not LIKE 'abc%': a prepared statement's generic plan cannot turn a LIKE parameter into an index range.
    PostgreSQL's index uses text_pattern_ops (byte order whatever the database's collation), so the range uses its
    operators; SQLite compares bytes already. Both orders are code point order for UTF-8, as `prefix_bounds` is.
    """
    key = func.lower(c.commit_id)
    if dialect == "postgresql":
        low, high = prefix_bounds(sha.lower())
        return [key.op("~>=~", is_comparison=True)(low)] + (
            [] if high is None else [key.op("~<~", is_comparison=True)(high)]
        )
    # SQLite's lower() changes ASCII letters only.
    low, high = prefix_bounds("".join(ch.lower() if ch.isascii() else ch for ch in sha))
    return [key >= low] + ([] if high is None else [key < high])


@dataclass(frozen=True, slots=True)
class Label:
    """A commit's late label (`POST /feedback`)."""

    buggy: bool
    fixed_by: str | None
    labeled_at: float | None
    received_at: float


@dataclass(frozen=True, slots=True)
class ShadowScore:
    """A challenger's probability for a logged commit, beside the champion's."""

    time: float
    model_version: int
    probability: float
    shadow_version: int
    shadow_probability: float


def _logged(row: Sequence[Any]) -> LoggedPrediction:
    buggy = None if row[-1] is None else bool(row[-1])
    return LoggedPrediction(
        int(row[0]), float(row[1]), row[2], row[3], row[4], tuple(float(v) for v in row[5 : 5 + _N]),
        float(row[5 + _N]), bool(row[6 + _N]), str(row[7 + _N]), int(row[8 + _N]), buggy,
    )  # fmt: skip


def _with_labels(query: Select[Any]) -> Select[Any]:
    return query.select_from(predictions.outerjoin(feedback, feedback.c.commit_id == c.commit_id))


def repository_logged(engine: Engine, repository: str) -> bool:
    """True when the log holds a prediction for `repository` (one index probe)."""
    with engine.connect() as conn:
        return conn.execute(select(c.id).where(c.repository == repository).limit(1)).first() is not None


def list_query(dialect: str, where: CommitFilter, offset: int, limit: int) -> Select[Any]:
    """The SELECT of a page of the filter's predictions, newest first (ties: the later logged first)."""
    query = _with_labels(select(*_COLUMNS)).where(*where.conditions(dialect))
    return query.order_by(c.time.desc(), c.id.desc()).offset(offset).limit(limit)


def list_commits(engine: Engine, where: CommitFilter, offset: int, limit: int) -> list[LoggedPrediction]:
    """A page of the filter's predictions (see `list_query`)."""
    with engine.connect() as conn:
        return [_logged(row) for row in conn.execute(list_query(engine.dialect.name, where, offset, limit))]


def count_query(dialect: str, where: CommitFilter) -> Select[Any]:
    """The SELECT counting the filter's predictions."""
    return select(func.count()).select_from(predictions).where(*where.conditions(dialect))


def count_commits(engine: Engine, where: CommitFilter) -> int:
    """How many predictions the filter matches."""
    with engine.connect() as conn:
        return int(conn.execute(count_query(engine.dialect.name, where)).scalar() or 0)


def matches_query(dialect: str, where: CommitFilter, limit: int) -> Select[Any]:
    """The SELECT of the ids the filter matches, newest first: answered from the (repository, …) index alone."""
    return select(c.id).where(*where.conditions(dialect)).order_by(c.time.desc(), c.id.desc()).limit(limit)


def search_commits(
    engine: Engine, where: CommitFilter, offset: int, limit: int, most: int
) -> tuple[list[LoggedPrediction], int]:
    """A page of a search and the number of matches (at most `most`): one pass over the index, then the page's rows.

    A search reads every index entry of the repository (a substring is no index range), so it runs once instead
    of once to count and once to list; the page's rows are then read by id.
    """
    with engine.connect() as conn:
        ids = [int(i) for i in conn.execute(matches_query(engine.dialect.name, where, most)).scalars()]
        page = ids[offset : offset + limit]
        if not page:
            return [], len(ids)
        query = _with_labels(select(*_COLUMNS)).where(c.id.in_(page)).order_by(c.time.desc(), c.id.desc())
        return [_logged(row) for row in conn.execute(query)], len(ids)


def predictions_of(engine: Engine, commit_id: str, limit: int = 20) -> list[LoggedPrediction]:
    """The commit's logged predictions, newest first (a commit scored again, e.g. by a re-run CI job)."""
    query = _with_labels(select(*_COLUMNS)).where(c.commit_id == commit_id)
    query = query.order_by(c.time.desc(), c.id.desc()).limit(limit)
    with engine.connect() as conn:
        return [_logged(row) for row in conn.execute(query)]


def label_of(engine: Engine, commit_id: str) -> Label | None:
    """The commit's label, or None before feedback arrived."""
    f = feedback.c
    query = select(f.buggy, f.fixed_by, f.labeled_at, f.received_at).where(f.commit_id == commit_id)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    return Label(bool(row[0]), row[1], None if row[2] is None else float(row[2]), float(row[3]))


def shadow_scores_of(engine: Engine, commit_id: str, limit: int = 20) -> list[ShadowScore]:
    """Challengers' scores of the commit, newest first."""
    s = shadow_predictions.c
    query = (
        select(s.time, s.model_version, s.probability, s.shadow_version, s.shadow_probability)
        .where(s.commit_id == commit_id)
        .order_by(s.time.desc(), s.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        return [ShadowScore(float(r[0]), int(r[1]), float(r[2]), int(r[3]), float(r[4])) for r in conn.execute(query)]


def logged_commit_ids(engine: Engine, model_version: int, commit_ids: list[str]) -> set[str]:
    """The ids among `commit_ids` with at least one prediction by `model_version` (a backfill's re-run skips them)."""
    found: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(commit_ids), 1000):  # bound the bind parameters of one statement
            part = commit_ids[start : start + 1000]
            query = select(c.commit_id).where(c.commit_id.in_(part), c.model_version == model_version).distinct()
            found.update(conn.execute(query).scalars())
    return found
