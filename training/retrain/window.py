"""How much data a retrain sees: the mature pool, the held-out recent period, fixed and dynamic windows.

The pool is the base dataset(s) plus production commits whose labels matured, de-duplicated by commit id.
The newest part of the pool is held out: the challenger never trains on it, and champion and challenger
are compared on it. Windows then cut the rest: the last N days/rows (fixed), or the candidate size that
scores best on the most recent labelled period before the hold-out (dynamic).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from app.contract import FEATURES, DataFile
from training import data, evaluate, model
from training.config import DEFAULT_FEATURES, ModelFamily

DAY = 86_400.0
PRODUCTION = "production"


@dataclass(frozen=True)
class Pool:
    """Mature labelled rows available to one retrain, time-ordered, with where they came from."""

    frame: pd.DataFrame
    base_rows: int
    production_rows: int
    production_immature: int
    duplicates_dropped: int
    files: list[DataFile] = field(default_factory=list)

    def dataset(self, frame: pd.DataFrame) -> data.Dataset:
        """A pipeline Dataset of `frame` (a window of this pool), fingerprinted over files + production."""
        ids = "\n".join(f"{c}:{b}" for c, b in zip(frame["commit_id"], frame["buggy"], strict=True))
        production = DataFile(
            name="production-feedback", sha256=hashlib.sha256(ids.encode()).hexdigest(), rows=len(frame)
        )
        return data.Dataset(frame, data.fingerprint([*self.files, production]), self.duplicates_dropped)


@dataclass(frozen=True)
class WindowChoice:
    """The rows one challenger trains on and why (kept in the audit record)."""

    strategy: str
    frame: pd.DataFrame
    description: str
    scores: dict[str, float | None] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Plain JSON for the audit record (no rows)."""
        return {
            "strategy": self.strategy,
            "description": self.description,
            "rows": len(self.frame),
            "start": iso(self.frame["author_date"].min()) if len(self.frame) else None,
            "end": iso(self.frame["author_date"].max()) if len(self.frame) else None,
            "candidate_scores": self.scores,
        }


def iso(seconds: float) -> str:
    """Unix seconds → ISO-8601 UTC."""
    return pd.Timestamp(float(seconds), unit="s", tz="UTC").isoformat()


def production_frame(
    features: dict[str, np.ndarray], times: np.ndarray, commit_ids: Sequence[str | None], buggy: np.ndarray
) -> pd.DataFrame:
    """Labelled logged predictions in the dataset format (prediction time stands in for the author date)."""
    frame = pd.DataFrame({"commit_id": [str(c) for c in commit_ids], "repository": PRODUCTION})
    frame["author_date"] = np.asarray(times, dtype=np.float64).astype(np.int64)
    frame["buggy"] = np.asarray(buggy, dtype=np.int64)
    for name in FEATURES:
        frame[name] = np.asarray(features[name], dtype=np.float64)
    frame["effort"] = frame["la"] + frame["ld"]
    # The log comes newest first; every consumer (tail = newest, time cuts) expects time order.
    return frame.sort_values(["author_date", "commit_id"], kind="stable").reset_index(drop=True)


def mature(frame: pd.DataFrame, now: float, label_delay_days: float) -> tuple[pd.DataFrame, int]:
    """Rows old enough that a missing fix means clean: author_date ≤ now − delay; (kept, dropped count)."""
    keep = frame["author_date"] <= now - label_delay_days * DAY
    return frame.loc[keep].reset_index(drop=True), int((~keep).sum())


def build_pool(base: data.Dataset | None, production: pd.DataFrame, production_immature: int) -> Pool:
    """Base rows (already cut for maturity) plus mature production rows; a commit in both keeps its
    production label, which arrived later and is therefore the more mature one."""
    base_frame = base.frame if base is not None else production.iloc[:0]
    pooled = pd.concat([production, base_frame], ignore_index=True)
    before = len(pooled)
    pooled = pooled.drop_duplicates(subset="commit_id", keep="first")
    pooled = pooled.sort_values(["author_date", "commit_id"], kind="stable").reset_index(drop=True)
    return Pool(
        frame=pooled,
        base_rows=len(base_frame),
        production_rows=len(production),
        production_immature=production_immature,
        duplicates_dropped=before - len(pooled) + (base.duplicates_dropped if base else 0),
        files=list(base.fingerprint.files) if base else [],
    )


def hold_out(frame: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(older rows, the newest `fraction` by time); rows sharing the boundary time go to the newer side."""
    if len(frame) < 2:
        raise ValueError(f"{len(frame)} mature rows: too few to hold out a recent period")
    split = data.split_chronological(frame, fraction, 0.01)
    older = pd.concat([split.train, split.validation], ignore_index=True)
    return older, split.test


def fixed(frame: pd.DataFrame, days: float | None = None, rows: int | None = None) -> WindowChoice:
    """The last `days` days (relative to the newest row) or the last `rows` rows; everything when neither."""
    if days is not None:
        cut = frame.loc[frame["author_date"] >= frame["author_date"].max() - days * DAY].reset_index(drop=True)
        return WindowChoice("fixed", cut, f"last {days:g} days")
    if rows is not None:
        return WindowChoice("fixed", frame.tail(rows).reset_index(drop=True), f"last {rows} rows")
    return WindowChoice("fixed", frame, "all mature rows")


def dynamic(
    frame: pd.DataFrame,
    candidates_days: Sequence[float | None],
    family: ModelFamily,
    params: dict[str, model.ParamValue] | None,
    *,
    recent_fraction: float,
    seed: int,
) -> WindowChoice:
    """The candidate size (days; None = all) whose model scores best on the most recent labelled period.

    Each candidate trains `family` (with `params`, or its defaults) on its window ending before that period;
    the winner's window is then re-cut to end at the newest row, so the final fit also sees that period.
    """
    if not candidates_days:
        raise ValueError("dynamic window needs at least one candidate size")
    older, recent = hold_out(frame, recent_fraction)
    y_recent = recent["buggy"].to_numpy()
    scores: dict[str, float | None] = {}
    for days in candidates_days:
        window = fixed(older, days).frame
        scores[_label(days)] = _score(window, recent, y_recent, family, params, seed)
    valid = {k: v for k, v in scores.items() if v is not None}
    if not valid:
        chosen = fixed(frame, None)
        return WindowChoice("dynamic", chosen.frame, "no candidate could be scored: all mature rows", scores)
    # Ties go to the larger window (more data, same score): candidates are compared in the given order.
    best = max(valid, key=lambda k: (valid[k], _size(k)))
    days = None if best == "all" else float(best.removesuffix("d"))
    chosen = fixed(frame, days)
    period = f"{len(recent)} rows from {iso(recent['author_date'].min())}"
    return WindowChoice("dynamic", chosen.frame, f"{chosen.description}: best ROC AUC on {period}", scores)


def _label(days: float | None) -> str:
    return "all" if days is None else f"{days:g}d"


def _size(label: str) -> float:
    return float("inf") if label == "all" else float(label.removesuffix("d"))


def _score(
    window: pd.DataFrame,
    recent: pd.DataFrame,
    y_recent: np.ndarray,
    family: ModelFamily,
    params: dict[str, model.ParamValue] | None,
    seed: int,
) -> float | None:
    """ROC AUC on `recent` of `family` trained on `window`; None when either side lacks a class."""
    y = window["buggy"].to_numpy()
    if len(np.unique(y)) < 2 or len(np.unique(y_recent)) < 2 or min(np.bincount(y)) < 5:
        return None
    # No params: the family's defaults on today's default inputs (champion params name their own feature set).
    recipe: dict[str, model.ParamValue] = {model.FEATURES_PARAM: DEFAULT_FEATURES} if params is None else params
    candidate = model.fixed(family, recipe, data.features(window), y, seed=seed)
    p = model.predict(candidate.estimator, data.features(recent))
    auc = evaluate.roc_auc(y_recent, p)
    return None if auc is None else round(auc, 4)
