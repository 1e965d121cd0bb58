"""Load and validate commit-metric datasets; cut immature labels; split chronologically; the data gates."""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from app.contract import FEATURES, DataFile, DataFingerprint
from training.config import GateRefused, QualityGates, TrainConfig

SECONDS_PER_DAY = 86_400.0
REQUIRED_COLUMNS: tuple[str, ...] = ("commit_id", "author_date", "buggy", *FEATURES)
_TRUE = {"true", "1", "yes", "t"}
_FALSE = {"false", "0", "no", "f"}


class DataError(ValueError):
    """A dataset cannot be used; the message names the file (and commit or column) and the problem."""


@dataclass(frozen=True)
class Dataset:
    """Validated commits from one or more files, sorted by time, duplicates removed."""

    frame: pd.DataFrame  # commit_id, repository, author_date (int s), buggy (0/1), the 15 features, effort
    fingerprint: DataFingerprint
    duplicates_dropped: int


@dataclass(frozen=True)
class Split:
    """Row sets of one run; `kind` says whether time order was respected."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    kind: str


def resolve_paths(paths: list[Path]) -> list[Path]:
    """Expand folders into their `*.csv` files; every path must exist."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.csv"))
            if not found:
                raise DataError(f"{path}: folder holds no .csv files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{path}: no such file or folder")
    return files


def read_file(path: Path) -> tuple[pd.DataFrame, DataFile]:
    """Read and validate one CSV file in the shared dataset format."""
    raw = path.read_bytes()
    # Real dumps hold messages and paths that are not valid UTF-8: replace, never crash.
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        raise DataError(f"{path}: file is empty")
    try:
        # The C parser has no field-size limit (the csv module's default is 128 KB). Every column is read as
        # text: pandas' own float inference crashes the process (SIGSEGV, pandas 2.3) on values with a huge
        # exponent such as the hex id "078e7261814633b7…", so numbers are parsed by numpy below.
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path}: file is empty") from exc
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: not a valid CSV file ({str(exc).splitlines()[0]})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing required columns: {', '.join(missing)}")
    if frame.empty:
        raise DataError(f"{path}: file has a header but no rows")
    return _normalise(frame, path), DataFile(name=path.name, sha256=hashlib.sha256(raw).hexdigest(), rows=len(frame))


def _normalise(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Typed columns only; the first bad value raises a DataError naming the commit."""
    ids = frame["commit_id"].astype(str)
    if frame["commit_id"].isna().any():
        raise DataError(f"{path}: row {int(frame['commit_id'].isna().to_numpy().argmax()) + 2}: empty commit_id")
    out = pd.DataFrame({"commit_id": ids})
    if "repository_id" in frame.columns:
        out["repository"] = frame["repository_id"].fillna(path.stem).astype(str)
    else:
        out["repository"] = path.stem
    out["author_date"] = _numeric(frame, "author_date", ids, path).astype(np.int64)
    out["buggy"] = _boolean(frame["buggy"], ids, path)
    for name in FEATURES:
        values = _numeric(frame, name, ids, path)
        negative = values < 0
        if negative.any():
            first = int(np.argmax(negative.to_numpy()))
            raise DataError(f"{path}: commit {ids.iloc[first]}: metric '{name}' is negative ({values.iloc[first]})")
        out[name] = values.astype(np.float64)
    out["effort"] = out["la"] + out["ld"]
    return out


def parse_numbers(texts: pd.Series) -> np.ndarray:
    """Text → float64, NaN where a value is empty or not a number (never pandas' crashing float parser)."""
    raw = texts.fillna("").to_numpy(dtype=str)
    try:
        return raw.astype(np.float64)  # numpy's parser: "1e999999" → inf, never a crash
    except ValueError:
        return np.array([_number_or_nan(v) for v in raw], dtype=np.float64)


def _number_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _numeric(frame: pd.DataFrame, column: str, ids: pd.Series, path: Path) -> pd.Series:
    values = parse_numbers(frame[column])
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.argmax(bad))
        raise DataError(
            f"{path}: commit {ids.iloc[first]}: '{column}' is not a finite number ({frame[column].iloc[first]!r})"
        )
    return pd.Series(values, index=frame.index)


def _boolean(column: pd.Series, ids: pd.Series, path: Path) -> pd.Series:
    text = column.astype(str).str.strip().str.lower()
    known = text.isin(_TRUE | _FALSE)
    if not known.all():
        first = int(np.argmax(~known.to_numpy()))
        raise DataError(f"{path}: commit {ids.iloc[first]}: 'buggy' must be true/false ({column.iloc[first]!r})")
    return text.isin(_TRUE).astype(np.int64)


def load(paths: list[Path]) -> Dataset:
    """Load files/folders into one time-ordered frame, dropping (and counting) duplicate commit ids."""
    files = resolve_paths(paths)
    frames, infos = [], []
    for path in files:
        frame, info = read_file(path)
        frames.append(frame)
        infos.append(info)
    pooled = pd.concat(frames, ignore_index=True)
    before = len(pooled)
    pooled = pooled.drop_duplicates(subset="commit_id", keep="first")
    pooled = pooled.sort_values(["author_date", "commit_id"], kind="stable").reset_index(drop=True)
    return Dataset(frame=pooled, fingerprint=fingerprint(infos), duplicates_dropped=before - len(pooled))


def fingerprint(files: list[DataFile]) -> DataFingerprint:
    """sha256 over the per-file hashes in name order: equal inputs → equal fingerprint."""
    ordered = sorted(files, key=lambda f: (f.name, f.sha256))
    digest = hashlib.sha256("".join(f"{f.name}:{f.sha256}\n" for f in ordered).encode()).hexdigest()
    return DataFingerprint(sha256=digest, files=ordered)


def drop_immature(frame: pd.DataFrame, label_delay_days: float) -> tuple[pd.DataFrame, int]:
    """Drop commits newer than their repository's newest commit − delay; return (mature rows, dropped count).

    Per repository because each dump was mined at its own time: a pooled global cut would keep an old
    project's immature tail.
    """
    newest = frame.groupby("repository")["author_date"].transform("max")
    mature = frame["author_date"] <= newest - label_delay_days * SECONDS_PER_DAY
    kept = frame.loc[mature].reset_index(drop=True)
    return kept, int((~mature).sum())


def split(frame: pd.DataFrame, config: TrainConfig) -> Split:
    """The configured split: chronological (the default) or random (only on request; flagged optimistic)."""
    if config.split == "random":
        return split_random(frame, config.test_fraction, config.validation_fraction, config.seed)
    return split_chronological(frame, config.test_fraction, config.validation_fraction)


def split_chronological(frame: pd.DataFrame, test_fraction: float, validation_fraction: float) -> Split:
    """Train on the past, validate on the next period, test on the newest; strict time order between sets."""
    ordered = frame.sort_values(["author_date", "commit_id"], kind="stable").reset_index(drop=True)
    rest, test = _cut_by_time(ordered, test_fraction)
    train, validation = _cut_by_time(rest, validation_fraction)
    return Split(train=train, validation=validation, test=test, kind="chronological")


def _cut_by_time(ordered: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    # Rows sharing the boundary timestamp all go to the newer side, so every older date < every newer date.
    index = max(1, min(len(ordered) - 1, round(len(ordered) * (1 - fraction))))
    boundary = ordered["author_date"].iloc[index]
    older = ordered["author_date"] < boundary
    return ordered.loc[older].reset_index(drop=True), ordered.loc[~older].reset_index(drop=True)


def split_random(frame: pd.DataFrame, test_fraction: float, validation_fraction: float, seed: int) -> Split:
    """Stratified random split — optimistic for JIT data (future leaks into training); only on request."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[pd.DataFrame]] = {"train": [], "validation": [], "test": []}
    for _, group in frame.groupby("buggy"):
        shuffled = group.iloc[rng.permutation(len(group))]
        n_test = round(len(group) * test_fraction)
        n_val = round((len(group) - n_test) * validation_fraction)
        parts["test"].append(shuffled.iloc[:n_test])
        parts["validation"].append(shuffled.iloc[n_test : n_test + n_val])
        parts["train"].append(shuffled.iloc[n_test + n_val :])
    built = {k: pd.concat(v).sort_values(["author_date", "commit_id"]).reset_index(drop=True) for k, v in parts.items()}
    return Split(train=built["train"], validation=built["validation"], test=built["test"], kind="random")


def features(frame: pd.DataFrame) -> np.ndarray:
    """The model input: float32 [N, 15] in contract order."""
    return frame.loc[:, list(FEATURES)].to_numpy(dtype=np.float32)


def row_weights(frame: pd.DataFrame) -> np.ndarray | None:
    """The optional per-row `weight` column (dynamic data selection), or None."""
    return frame["weight"].to_numpy(dtype=np.float64) if "weight" in frame.columns else None


def check_data_gates(y: np.ndarray, gates: QualityGates, where: str) -> None:
    """Refuse (GateRefused) too few rows, a lopsided buggy share or too few rows of a class."""
    rows, buggy = len(y), int(np.sum(y))
    clean = rows - buggy
    if rows < gates.min_train_rows:
        raise GateRefused(f"{where}: {rows} rows < min_train_rows {gates.min_train_rows}")
    share = buggy / rows
    if not gates.min_buggy_share <= share <= gates.max_buggy_share:
        raise GateRefused(
            f"{where}: buggy share {share:.1%} outside {gates.min_buggy_share:.0%}–{gates.max_buggy_share:.0%}"
        )
    if min(buggy, clean) < gates.min_rows_per_class:
        raise GateRefused(f"{where}: {buggy} buggy / {clean} clean rows; need ≥ {gates.min_rows_per_class} of each")


def check_split(split: Split, gates: QualityGates) -> None:
    """The training period passes the data gates; validation and test each hold both classes (ROC AUC)."""
    check_data_gates(split.train["buggy"].to_numpy(), gates, "training period")
    for name, part in (("validation", split.validation), ("test", split.test)):
        if len(np.unique(part["buggy"].to_numpy())) < 2:
            raise GateRefused(f"{name} period holds only one class; ROC AUC is undefined")


def load_configured(config: TrainConfig, progress: Callable[[str], None]) -> Dataset:
    """The configured files, or the embedded synthetic default when none are given."""
    if config.data:
        return load(config.data)
    from training.synthetic.generate import generate, write_csv
    from training.synthetic.spec import load_default

    progress(f"no data given: generating {config.synthetic_rows} commits from the embedded default")
    frame = generate(load_default(), rows=config.synthetic_rows, seed=config.seed)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "embedded-default.csv"
        write_csv(frame, path)
        return load([path])
