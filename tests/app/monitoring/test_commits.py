"""Queries for the web pages on SQLite and PostgreSQL: lists, filters, per-day counts, one commit's rows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Select

from app.monitoring import commits
from app.monitoring.commits import CommitFilter
from app.monitoring.store import Store
from tests.support import Database, log_row

T = 1_790_000_000.0


@pytest.fixture
def store(database: Database) -> Iterator[Store]:
    s = Store.open(database.url, schema=database.schema)
    s.insert_predictions(
        [log_row(T + i * 3600, "org/app", ("low", "medium", "high")[i % 3], 0.1 + i / 100, f"org/app_{i:02d}ab_CD")
         for i in range(30)]
        + [log_row(T + 5, "other", "high", 0.9, "other_1"), log_row(T + 7, "org/app", "low", 0.2, None)]
    )  # fmt: skip
    yield s
    s.close()


def test_a_page_is_newest_first_with_labels(store: Store) -> None:
    store.upsert_feedback(
        [{"commit_id": "org/app_29ab_CD", "buggy": True}, {"commit_id": "org/app_28ab_CD", "buggy": False}]
    )
    rows = commits.list_commits(store.engine, CommitFilter("org/app"), offset=0, limit=5)
    assert [r.commit_id for r in rows] == [f"org/app_{i:02d}ab_CD" for i in (29, 28, 27, 26, 25)]
    assert [r.buggy for r in rows[:3]] == [True, False, None]
    assert rows[0].features == tuple([1.0] * 15) and rows[0].risk_band == "high" and rows[0].model_version == 1
    assert commits.count_commits(store.engine, CommitFilter("org/app")) == 31
    tail = commits.list_commits(store.engine, CommitFilter("org/app"), offset=29, limit=5)
    assert [r.commit_id for r in tail] == [None, "org/app_00ab_CD"]  # logged at T + 7 s and at T


def test_filters_narrow_the_list(store: Store) -> None:
    engine = store.engine
    assert commits.count_commits(engine, CommitFilter("org/app", band="high")) == 10
    window = CommitFilter("org/app", start=T + 3600, end=T + 4 * 3600)
    assert [r.commit_id for r in commits.list_commits(engine, window, 0, 10)] == [
        "org/app_03ab_CD", "org/app_02ab_CD", "org/app_01ab_CD"
    ]  # fmt: skip
    # The SHA search is a prefix of the commit id in any case; `_` and `%` are literal characters, not wildcards.
    assert commits.count_commits(engine, CommitFilter("org/app", sha="ORG/APP_1")) == 10  # 10 … 19
    assert commits.count_commits(engine, CommitFilter("org/app", sha="org/app_01AB_cd")) == 1
    assert commits.count_commits(engine, CommitFilter("org/app", sha="1ab_cd")) == 0  # inside the id: no match
    assert commits.count_commits(engine, CommitFilter("org/app", sha="%")) == 0
    assert commits.count_commits(engine, CommitFilter("org/app", sha="org_app")) == 0
    assert commits.count_commits(engine, CommitFilter("org/app", sha="org/app_2", band="high")) == 4  # 20, 23, 26, 29


def test_a_search_lists_a_page_and_counts_its_matches_in_one_pass(store: Store) -> None:
    where = CommitFilter("org/app", sha="org/APP_")  # every commit of org/app but the one without an id
    rows, total = commits.search_commits(store.engine, where, offset=5, limit=3, most=1000)
    assert total == 30 and [r.commit_id for r in rows] == [f"org/app_{i:02d}ab_CD" for i in (24, 23, 22)]
    assert rows[0].buggy is None and rows[0].features == tuple([1.0] * 15)
    rows, total = commits.search_commits(store.engine, where, offset=0, limit=3, most=10)
    assert total == 10 and len(rows) == 3  # capped
    assert commits.search_commits(store.engine, where, offset=40, limit=3, most=1000) == ([], 30)


def test_one_commit_its_label_and_shadow_scores(store: Store) -> None:
    engine = store.engine
    store.insert_predictions([log_row(T + 99_999, "org/app", "high", 0.95, "org/app_03ab_CD")])  # scored again
    scores = commits.predictions_of(engine, "org/app_03ab_CD")
    assert [s.probability for s in scores] == [0.95, pytest.approx(0.13)]
    assert commits.predictions_of(engine, "nope") == []
    assert commits.label_of(engine, "org/app_03ab_CD") is None
    store.upsert_feedback([{"commit_id": "org/app_03ab_CD", "buggy": True, "fixed_by": "f00", "labeled_at": T}])
    label = commits.label_of(engine, "org/app_03ab_CD")
    assert label is not None and (label.buggy, label.fixed_by, label.labeled_at) == (True, "f00", T)
    store.append_log((), [(T, "r", "org/app_03ab_CD", 1, 0.13, 2, 0.4)], ())
    [shadow] = commits.shadow_scores_of(engine, "org/app_03ab_CD")
    assert (shadow.shadow_version, shadow.shadow_probability, shadow.probability) == (2, 0.4, 0.13)
    assert commits.repository_logged(engine, "other") and not commits.repository_logged(engine, "org")


def plan(store: Store, query: Select[Any]) -> str:
    """The database's plan of `query` (PostgreSQL: in the test's schema)."""
    with store.engine.connect() as conn:
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        if conn.dialect.name == "sqlite":
            return str(conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql).all())
        schema = conn.get_execution_options().get("schema_translate_map", {}).get(None)
        conn.exec_driver_sql(f'SET LOCAL search_path TO "{schema}"')
        return str(conn.exec_driver_sql("EXPLAIN " + sql).all())


def test_the_page_queries_use_the_repository_index(store: Store) -> None:
    """With many repositories (and fresh statistics), a repository's queries read its index range only."""
    store.insert_predictions([log_row(T - i, f"noise-{i % 50}", "low") for i in range(5000)])
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    dialect = store.engine.dialect.name
    for where in (CommitFilter("org/app"), CommitFilter("org/app", band="high")):
        queries = (
            commits.list_query(dialect, where, 0, 50), commits.count_query(dialect, where),
            commits.matches_query(dialect, where, 1000),
        )  # fmt: skip
        for query in queries:  # on a small table the narrowest index led by the repository may win: any will do
            assert "ix_predictions_repository_" in plan(store, query)
    # A SHA search is a range of the (repository, lower(commit_id)) index, not a walk of the repository's entries.
    searched = plan(store, commits.matches_query(dialect, CommitFilter("org/app", sha="ORG/app_1"), 1000))
    assert "ix_predictions_repository_sha" in searched
    if dialect == "sqlite":
        assert "(repository=? AND <expr>>? AND <expr><?)" in searched
    else:
        assert "~>=~" in searched and "Index Cond" in searched and "Filter" not in searched


@pytest.mark.parametrize(
    ("text", "bounds"),
    [("ab", ("ab", "ac")), ("a9", ("a9", "a:")), ("x\U0010ffff", ("x\U0010ffff", "y")),
     ("\ud7ff", ("\ud7ff", "\ue000")), ("\U0010ffff", ("\U0010ffff", None))],
)  # fmt: skip
def test_prefix_bounds_hold_exactly_the_strings_starting_with_the_text(
    text: str, bounds: tuple[str, str | None]
) -> None:
    assert commits.prefix_bounds(text) == bounds
    low, high = bounds
    for candidate in (text, text + "0", text + "\U0010ffff"):
        assert low <= candidate and (high is None or candidate < high)
    assert text[:-1] < low and (high is None or not high.startswith(text))


def test_logged_commit_ids_answers_per_model_version_in_chunks(store: Store) -> None:
    store.insert_predictions([log_row(T + 9, "org/app", "low", 0.1, "org/app_00ab_CD") | {"model_version": 2}])
    asked = [f"org/app_{i:02d}ab_CD" for i in range(0, 40, 2)] + ["never", "other_1"] + [f"x{i}" for i in range(1500)]
    version_1 = commits.logged_commit_ids(store.engine, 1, asked)  # > 1,000 ids: several statements
    assert version_1 == {f"org/app_{i:02d}ab_CD" for i in range(0, 30, 2)} | {"other_1"}
    assert commits.logged_commit_ids(store.engine, 2, asked) == {"org/app_00ab_CD"}
    assert commits.logged_commit_ids(store.engine, 3, asked) == set()
    assert commits.logged_commit_ids(store.engine, 1, []) == set()
