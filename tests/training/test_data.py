"""Loading, label maturity and splitting on real files (tiny hand-made ones and the shared datasets)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.contract import FEATURES
from training import data
from training.config import GateRefused, QualityGates, TrainConfig

HEADER = "commit_id,author_date,buggy,repository_id,commit_message,files," + ",".join(FEATURES)


def row(
    commit: str, date: int, buggy: str = "false", message: str = "msg", files: str = "a.java", **metrics: object
) -> str:
    values = {name: 1 for name in FEATURES} | metrics
    return f"{commit},{date},{buggy},repo,{message},{files}," + ",".join(str(values[n]) for n in FEATURES)


def write(path: Path, lines: list[str], raw: bytes | None = None) -> Path:
    path.write_bytes(raw if raw is not None else ("\n".join(lines) + "\n").encode())
    return path


def test_loads_shared_datasets_with_fingerprint(shared_commits_dir: Path) -> None:
    dataset = data.load([shared_commits_dir])
    assert len(dataset.frame) == 4759
    assert dataset.duplicates_dropped == 0
    assert [f.name for f in dataset.fingerprint.files] == ["HikariCP.csv", "YCSB.csv", "guice.csv", "jedis.csv"]
    assert sum(f.rows for f in dataset.fingerprint.files) == 4759
    assert dataset.frame["author_date"].is_monotonic_increasing
    assert set(dataset.frame["buggy"].unique()) == {0, 1}
    assert dataset.frame["buggy"].sum() == 209 + 80 + 423 + 143
    again = data.load(sorted(shared_commits_dir.glob("*.csv"), reverse=True))
    assert again.fingerprint.sha256 == dataset.fingerprint.sha256


def test_field_over_300_kb_is_read(tmp_path: Path) -> None:
    huge = ";".join(f"src/main/java/pkg/File{i}.java" for i in range(12_000))
    assert len(huge) > 300_000
    path = write(tmp_path / "big.csv", [HEADER, row("r_a", 100, files=huge), row("r_b", 200)])
    assert len(data.load([path]).frame) == 2


def test_invalid_utf8_is_replaced_not_fatal(tmp_path: Path) -> None:
    text = ("\n".join([HEADER, row("r_a", 100, message="caf\x00"), row("r_b", 200)]) + "\n").encode()
    raw = text.replace(b"caf\x00", b"caf\xe9 \xff\xfe")
    frame = data.load([write(tmp_path / "latin1.csv", [], raw)]).frame
    assert list(frame["commit_id"]) == ["r_a", "r_b"]


@pytest.mark.parametrize(
    ("lines", "raw", "message"),
    [
        ([], b"", "file is empty"),
        ([], b"\n\n", "file is empty"),
        ([HEADER], None, "header but no rows"),
        (["commit_id,author_date,buggy,ns", "r_a,1,false,1"], None, "missing required columns: nd, nf"),
        ([HEADER, row("r_a", 1), row("r_bad", 2, la="many")], None, "commit r_bad: 'la' is not a finite number"),
        ([HEADER, row("r_a", 1, entropy="nan")], None, "commit r_a: 'entropy' is not a finite number"),
        ([HEADER, row("r_a", 1, ld=-3)], None, "commit r_a: metric 'ld' is negative"),
        ([HEADER, row("r_a", 1, buggy="maybe")], None, "commit r_a: 'buggy' must be true/false"),
        ([HEADER, row("r_a", "yesterday")], None, "commit r_a: 'author_date' is not a finite number"),
        ([HEADER, row("r_a", 1, la="1e7261814633")], None, "commit r_a: 'la' is not a finite number"),
        ([HEADER, row("r_a", 1, la="")], None, "commit r_a: 'la' is not a finite number"),
    ],
)
def test_bad_files_name_file_and_problem(tmp_path: Path, lines: list[str], raw: bytes | None, message: str) -> None:
    path = write(tmp_path / "bad.csv", lines, raw)
    with pytest.raises(data.DataError) as error:
        data.load([path])
    assert str(path) in str(error.value)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_hex_ids_that_look_like_huge_floats_are_text(tmp_path: Path) -> None:
    # pandas' float inference crashes the process on such values; they must be read as the text they are.
    header = HEADER.replace("repository_id", "repository_id,commit_hash")
    line = row("078e7261814633b7b928e0d1_1e72618146331", 5).replace(",repo,", ",078e7261814633b7b928e0d1,1e726181,")
    frame = data.load([write(tmp_path / "hex.csv", [header, line])]).frame
    assert frame["commit_id"].tolist() == ["078e7261814633b7b928e0d1_1e72618146331"]
    assert frame["repository"].tolist() == ["078e7261814633b7b928e0d1"]
    assert frame["la"].tolist() == [1.0]


def test_missing_path_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(data.DataError, match="no such file or folder"):
        data.load([tmp_path / "absent.csv"])
    with pytest.raises(data.DataError, match=r"folder holds no \.csv files"):
        data.load([tmp_path])


def test_duplicates_dropped_and_counted(tmp_path: Path) -> None:
    first = write(tmp_path / "a.csv", [HEADER, row("r_a", 1), row("r_b", 2)])
    second = write(tmp_path / "b.csv", [HEADER, row("r_b", 2), row("r_c", 3), row("r_c", 3)])
    dataset = data.load([first, second])
    assert list(dataset.frame["commit_id"]) == ["r_a", "r_b", "r_c"]
    assert dataset.duplicates_dropped == 2


def frame_of(dates: list[int], repos: list[str] | None = None) -> pd.DataFrame:
    n = len(dates)
    frame = pd.DataFrame(
        {"commit_id": [f"c{i}" for i in range(n)], "author_date": dates, "buggy": [i % 2 for i in range(n)]}
    )
    frame["repository"] = repos or ["r"] * n
    for name in FEATURES:
        frame[name] = 1.0
    frame["effort"] = 2.0
    return frame


def test_drop_immature_per_repository() -> None:
    day = int(data.SECONDS_PER_DAY)
    dates = [0, 10 * day, 95 * day, 100 * day, 0, 50 * day]
    frame = frame_of(dates, ["old", "old", "old", "old", "new", "new"])
    kept, dropped = data.drop_immature(frame, label_delay_days=90)
    # old: newest 100 d → keep ≤ 10 d; new: newest 50 d → keep ≤ −40 d (nothing)
    assert sorted(kept["commit_id"]) == ["c0", "c1"]
    assert dropped == 4


def test_loads_several_repositories_with_an_order_independent_fingerprint(synthetic_commits_dir: Path) -> None:
    dataset = data.load([synthetic_commits_dir])
    assert len(dataset.frame) == 4500 and dataset.duplicates_dropped == 0
    assert [f.name for f in dataset.fingerprint.files] == ["alpha.csv", "beta.csv", "gamma.csv"]
    assert dataset.frame["repository"].nunique() == 3  # from the files' repository_id column
    assert dataset.frame["author_date"].is_monotonic_increasing
    assert list(dataset.frame.columns) == ["commit_id", "repository", "author_date", "buggy", *FEATURES, "effort"]
    again = data.load(sorted(synthetic_commits_dir.glob("*.csv"), reverse=True))
    assert again.fingerprint.sha256 == dataset.fingerprint.sha256
    one = data.load([synthetic_commits_dir / "alpha.csv"])
    assert one.fingerprint.sha256 != dataset.fingerprint.sha256


def test_chronological_split_is_strictly_ordered_with_ties(synthetic_commits_dir: Path) -> None:
    mature, _ = data.drop_immature(data.load([synthetic_commits_dir]).frame, 90)
    split = data.split_chronological(mature, 0.2, 0.2)
    assert split.train["author_date"].max() < split.validation["author_date"].min()
    assert split.validation["author_date"].max() < split.test["author_date"].min()
    assert len(split.train) + len(split.validation) + len(split.test) == len(mature)
    assert abs(len(split.test) / len(mature) - 0.2) < 0.01
    tied = data.split_chronological(frame_of([1, 2, 3, 3, 3, 3, 4, 5, 6, 7]), 0.5, 0.5)
    assert tied.train["author_date"].max() < tied.validation["author_date"].min()
    assert tied.validation["author_date"].max() < tied.test["author_date"].min()


def test_random_split_is_stratified_and_labelled() -> None:
    frame = frame_of(list(range(200)))
    split = data.split_random(frame, 0.2, 0.25, seed=1)
    assert split.kind == "random"
    assert len(split.test) == 40 and len(split.validation) == 40
    assert split.test["buggy"].mean() == pytest.approx(0.5)
    ids = set(split.train["commit_id"]) | set(split.validation["commit_id"]) | set(split.test["commit_id"])
    assert len(ids) == 200


def test_features_are_float32_in_contract_order() -> None:
    frame = frame_of([1, 2])
    frame["la"] = [5.0, 7.0]
    X = data.features(frame)
    assert X.dtype == np.float32 and X.shape == (2, 15)
    assert list(X[:, FEATURES.index("la")]) == [5.0, 7.0]


def labelled(buggy: list[int]) -> pd.DataFrame:
    """A frame of `len(buggy)` commits one second apart with these labels."""
    return frame_of(list(range(len(buggy)))).assign(buggy=buggy)


def test_the_configured_split() -> None:
    frame = frame_of(list(range(300)))
    random = data.split(frame, TrainConfig(split="random", seed=3))
    assert random.kind == "random" and random.test["buggy"].mean() == pytest.approx(0.5)  # stratified
    pd.testing.assert_frame_equal(random.test, data.split_random(frame, 0.2, 0.2, 3).test)
    chronological = data.split(frame, TrainConfig(test_fraction=0.1))
    assert chronological.kind == "chronological" and len(chronological.test) == 30
    assert chronological.test["author_date"].min() == 270


@pytest.mark.parametrize(
    ("rows", "buggy", "message"),
    [
        (40, 10, "40 rows < min_train_rows 50"),
        (100, 2, "buggy share 2.0% outside 5%–95%"),
        (100, 97, "buggy share 97.0% outside 5%–95%"),
        (100, 8, "8 buggy / 92 clean rows; need ≥ 10 of each"),
    ],
)
def test_data_gates_refuse_small_lopsided_or_thin_classes(rows: int, buggy: int, message: str) -> None:
    y = np.r_[np.ones(buggy), np.zeros(rows - buggy)]
    with pytest.raises(GateRefused, match="^" + re.escape(f"mature data: {message}")):
        data.check_data_gates(y, QualityGates(), "mature data")
    data.check_data_gates(np.r_[np.ones(20), np.zeros(80)], QualityGates(), "fine")  # passes quietly
    data.check_data_gates(
        y, QualityGates(min_train_rows=0, min_buggy_share=0, max_buggy_share=1, min_rows_per_class=0), "lenient"
    )


def test_a_one_class_validation_or_test_period_is_refused() -> None:
    train = labelled([1] * 20 + [0] * 80)
    mixed, clean = labelled([0, 1]), labelled([0, 0])
    data.check_split(data.Split(train, mixed, mixed, "chronological"), QualityGates())
    with pytest.raises(GateRefused, match=r"^validation period holds only one class"):
        data.check_split(data.Split(train, clean, mixed, "chronological"), QualityGates())
    with pytest.raises(GateRefused, match=r"^test period holds only one class"):
        data.check_split(data.Split(train, mixed, clean, "chronological"), QualityGates())
    with pytest.raises(GateRefused, match=r"^training period: 2 rows"):
        data.check_split(data.Split(mixed, mixed, mixed, "chronological"), QualityGates())


def test_row_weights_are_the_optional_weight_column() -> None:
    frame = labelled([0, 1, 0])
    assert data.row_weights(frame) is None
    weights = data.row_weights(frame.assign(weight=[0.5, 1, 2]))
    assert weights is not None and weights.dtype == np.float64 and list(weights) == [0.5, 1.0, 2.0]


def test_without_files_the_embedded_default_is_generated_deterministically() -> None:
    messages: list[str] = []
    dataset = data.load_configured(TrainConfig(synthetic_rows=300, seed=1), messages.append)
    assert len(dataset.frame) == 300 and [f.name for f in dataset.fingerprint.files] == ["embedded-default.csv"]
    assert messages == ["no data given: generating 300 commits from the embedded default"]
    again = data.load_configured(TrainConfig(synthetic_rows=300, seed=1), lambda _m: None)
    assert again.fingerprint == dataset.fingerprint  # same seed, same bytes
