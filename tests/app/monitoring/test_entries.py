"""A request's entry becomes rows; packed entries give back exactly the rows they were packed from."""

from __future__ import annotations

import numpy as np
import pytest

from app.contract import FEATURES
from app.monitoring.entries import (
    PACE_ENTRIES,
    PredictionBatch,
    PredictionBlock,
    RejectionRecord,
    ShadowScores,
    request_ids,
    rows_of,
)


def batch(first: int, rows: int, shadows: bool = False) -> PredictionBatch:
    """`rows` commits `c<first>`… whose features are their commit number."""
    numbers = np.arange(first, first + rows, dtype=np.float64)
    return PredictionBatch(
        time=1000.0 + first,
        request_id=f"r{first}",
        features=np.repeat(numbers[:, None], len(FEATURES), axis=1),
        probabilities=np.linspace(0.1, 0.9, rows),
        labels=np.arange(rows) % 2 == 0,
        risk_bands=["low"] * rows,
        model_version=3,
        commit_ids=[f"c{k}" for k in range(first, first + rows)],
        repositories=None,
        shadows=(ShadowScores(4, np.full(rows, 0.5)),) if shadows else (),
    )


def test_request_ids_name_each_commit_of_a_batch() -> None:
    assert request_ids("abc", 1) == ["abc"]
    assert request_ids("abc", 3) == ["abc-0", "abc-1", "abc-2"]
    assert request_ids(None, 2) == [None, None]


def test_entries_become_rows_in_order() -> None:
    rows = rows_of([batch(0, 2, shadows=True), RejectionRecord(5.0, "invalid_input", 3), batch(10, 1)])
    assert [(r[1], r[2], r[3], r[4], r[-4], r[-3], r[-1]) for r in rows.predictions] == [
        ("r0-0", "c0", None, 0.0, 0.1, True, 3), ("r0-1", "c1", None, 1.0, 0.9, False, 3),
        ("r10", "c10", None, 10.0, 0.1, True, 3),
    ]  # fmt: skip
    assert all(len(r) == 4 + len(FEATURES) + 4 for r in rows.predictions)
    assert rows.shadows == [(1000.0, "r0-0", "c0", 3, 0.1, 4, 0.5), (1000.0, "r0-1", "c1", 3, 0.9, 4, 0.5)]
    assert rows.rejections == [{"time": 5.0, "reason": "invalid_input", "count": 3}]


def test_packed_entries_give_back_the_very_rows_they_were_packed_from() -> None:
    # Byte-identical rows after an outage: the same values of the same types, in the same order, mixed freely with
    # entries that were never packed.
    first = [batch(0, 3, shadows=True), RejectionRecord(7.0, "invalid_input")]
    unusual = PredictionBatch(
        time=2000.0, request_id=None, features=np.full((1, len(FEATURES)), 0.1, dtype=np.float32),
        probabilities=np.array([0.3], dtype=np.float32), labels=np.array([True]), risk_bands=["high"],
        model_version=4, commit_ids=[np.str_("sha")], repositories=["repo"],
    )  # fmt: skip
    later = [unusual, batch(20, 2)]
    packed = rows_of(first).pack(rows=4)
    assert packed.rows == 4 and isinstance(packed.data, bytes)
    mixed = rows_of([packed, *later])
    plain = rows_of([*first, *later])
    assert mixed == plain
    for got, expected in zip(
        [*mixed.predictions, *mixed.shadows], [*plain.predictions, *plain.shadows], strict=True
    ):  # fmt: skip
        assert [type(v) for v in got] == [type(v) for v in expected]
    assert type(rows_of([rows_of([unusual]).pack(1)]).predictions[0][2]) is np.str_  # marshal would give bytes


def test_turning_entries_into_rows_is_paced_every_few_entries() -> None:
    calls: list[None] = []
    rows = rows_of([batch(i, 1) for i in range(5 * PACE_ENTRIES + 3)], lambda: calls.append(None))
    assert len(calls) == 5 and len(rows.predictions) == 5 * PACE_ENTRIES + 3


def test_a_one_commit_entry_gives_the_row_the_general_path_gives() -> None:
    single, pair = batch(7, 1), batch(7, 2)  # the same first commit: c7, features 7.0, p 0.1, buggy, "low"
    single.request_id = pair.request_id = None  # a batch's ids carry an index: compared without them
    [row] = single.prediction_values()
    general = pair.prediction_values()[0]
    assert row == general and [type(v) for v in row] == [type(v) for v in general]
    assert row == (1007.0, None, "c7", None, *[7.0] * len(FEATURES), 0.1, True, "low", 3)
    single.commit_ids = single.repositories = None
    assert single.prediction_values()[0][2:4] == (None, None)


def test_a_block_gives_each_added_commit_the_row_its_own_entry_gives() -> None:
    unusual = PredictionBatch(
        time=2000.0, request_id=None, features=np.full((1, len(FEATURES)), 0.1, dtype=np.float32),
        probabilities=np.array([0.3], dtype=np.float32), labels=np.array([True]), risk_bands=["high"],
        model_version=4, commit_ids=[np.str_("sha")], repositories=["repo"],
    )  # fmt: skip
    no_ids = batch(9, 1)
    no_ids.commit_ids = None
    singles = [batch(7, 1), unusual, no_ids]
    block = PredictionBlock(capacity=3)
    for single in singles:
        assert not block.full
        block.add(single)
    assert block.full and block.rows == 3
    expected = [row for single in singles for row in single.prediction_values()]
    got = block.prediction_values()
    assert got == expected
    for row, want in zip(got, expected, strict=True):  # the same types too: the database binds them alike
        assert [type(v) for v in row] == [type(v) for v in want]
    assert rows_of([block]).predictions == expected and rows_of([block]).shadows == []
    assert rows_of([rows_of([block]).pack(3)]) == rows_of(singles)  # packed during an outage: the same rows


def test_a_batch_that_is_not_one_commit_leaves_the_block_as_it_was() -> None:
    block = PredictionBlock(capacity=4)
    block.add(batch(1, 1))
    with pytest.raises(ValueError):
        block.add(batch(2, 2))  # two probabilities: not one commit
    narrow = batch(3, 1)
    narrow.features = np.ones((1, 3))
    with pytest.raises(ValueError):
        block.add(narrow)  # 3 metrics, not 15
    assert block.rows == 1 and block.prediction_values() == batch(1, 1).prediction_values()


def test_a_block_is_paced_as_the_work_of_several_entries() -> None:
    calls: list[None] = []
    block = PredictionBlock(capacity=2)
    block.add(batch(1, 1))
    rows_of([block, block], lambda: calls.append(None))
    assert len(calls) == 2
