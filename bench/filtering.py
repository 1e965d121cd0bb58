"""Training-row filters for `bench/inputs.py` (issue 14): clean the rows a model learns from, not those it is scored on.

    .venv/bin/python -m bench.filtering [--no-append]   # how many training rows each filter removes per fold

The SZZ literature finds label noise concentrated in a few kinds of commits and removes them from training:

- First commits: a repository's initial commit imports a project that grew elsewhere, and every later fix that
  touches those lines blames it (all four repositories' first commits are buggy here, blamed by 2–10 fixes each).
- Large commits (Kamei et al., TSE 2013; McIntosh & Kamei, TSE 2018): churn `la + ld` above a fixed count or a
  quantile of the training rows' churn, or more than a number of files: imports, reformattings, moves.
- Late fixes: a buggy label whose earliest fix lands long after the commit (years in which many other changes
  could have brought the bug in).
- Many fixes (the "future impact" of da Costa et al., "A framework for evaluating the results of the SZZ approach",
  TSE 2017: one change blamed for very many later bugs is unlikely to have caused them all), and wide fixes (the
  same framework's "realism": one bug blamed on changes years apart; here a fix that blames very many commits, a
  tangled or sweeping change whose deletions were not all bug fixes; Fan et al., TSE 2019, measure what SZZ's
  mislabels cost JIT models).

Every estimator here takes the log1p metrics plus one last column, the row's position in the benchmark's frame,
and drops that column before fitting and predicting. `fit` sees a fold's training rows only, so each filter reads
those rows' facts only: quantiles, first commits, fix dates and blame counts come from them, never from test
rows. The class-balanced logistic regression is fitted on the kept rows and predicts every row.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from bench.machine import publish, table
from bench.train import SHARED

DAY_S = 86_400.0
Logistic = Callable[[float], Any]  # C → class-balanced logistic regression pipeline


@dataclass(frozen=True)
class Rows:
    """Per row of the benchmark's frame, the facts a filter may read (for the training rows' positions only)."""

    codes: np.ndarray  # repository code (int)
    dates: np.ndarray  # author date, Unix seconds
    churn: np.ndarray  # la + ld
    files: np.ndarray  # nf
    hashes: np.ndarray  # commit SHA (str)
    fixes: tuple[tuple[str, ...], ...]  # SHAs of the fixes that blamed the row (empty when clean)

    @classmethod
    def of(cls, frame: pd.DataFrame, fixed_by: pd.Series) -> Rows:
        """From a frame of `training.data.load` and its rows' `fixed_by` texts (`;`-joined SHAs, aligned)."""
        return cls(
            codes=np.unique(frame["repository"].astype(str).to_numpy(), return_inverse=True)[1],
            dates=frame["author_date"].to_numpy(dtype=np.float64),
            churn=(frame["la"] + frame["ld"]).to_numpy(dtype=np.float64),
            files=frame["nf"].to_numpy(dtype=np.float64),
            hashes=frame["commit_id"].astype(str).str.rsplit("_", n=1).str[-1].to_numpy(),
            fixes=tuple(tuple(s for s in str(text).split(";") if s) for text in fixed_by.fillna("")),
        )


Keep = Callable[[Rows, np.ndarray, np.ndarray], np.ndarray]  # (rows, training positions, labels) → kept mask


def fixed_by(frame: pd.DataFrame, directory: Path = SHARED) -> pd.Series:
    """Each row's `fixed_by` text from the CSV files in `directory` (matched by commit id; empty if not found)."""
    texts: dict[str, str] = {}
    for path in sorted(directory.glob("*.csv")):
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["commit_id", "fixed_by"])
        texts.update(zip(raw["commit_id"], raw["fixed_by"], strict=True))
    return frame["commit_id"].map(texts).fillna("")


def first_commits(n: int) -> Keep:
    """Drop each repository's first `n` training rows (by author date)."""

    def keep(rows: Rows, at: np.ndarray, y: np.ndarray) -> np.ndarray:
        kept = np.ones(len(at), dtype=bool)
        codes = rows.codes[at]
        for code in np.unique(codes):
            mine = np.flatnonzero(codes == code)
            kept[mine[np.argsort(rows.dates[at][mine], kind="stable")[:n]]] = False
        return kept

    return keep


def churn_at_most(lines: float) -> Keep:
    """Drop training rows with more than `lines` lines changed (la + ld)."""
    return lambda rows, at, y: rows.churn[at] <= lines


def churn_within_quantile(q: float) -> Keep:
    """Drop training rows whose churn is above the training rows' `q` quantile."""
    return lambda rows, at, y: rows.churn[at] <= np.quantile(rows.churn[at], q)


def files_at_most(n: int) -> Keep:
    """Drop training rows touching more than `n` counted files."""
    return lambda rows, at, y: rows.files[at] <= n


def fixed_within(days: float) -> Keep:
    """Drop buggy training rows whose earliest fix lands more than `days` after them.

    A fix is dated by the training rows (every fixing commit is a row of the same dataset). A fix that is not
    among them lands after its repository's newest training commit (training rows are each repository's oldest
    or all of its mature rows), so that date bounds the delay from below.
    """

    def keep(rows: Rows, at: np.ndarray, y: np.ndarray) -> np.ndarray:
        dated = {(c, h): d for c, h, d in zip(rows.codes[at], rows.hashes[at], rows.dates[at], strict=True)}
        newest = {c: rows.dates[at][rows.codes[at] == c].max() for c in np.unique(rows.codes[at])}
        kept = np.ones(len(at), dtype=bool)
        for i, p in enumerate(at):
            c = rows.codes[p]
            if y[i] and rows.fixes[p]:
                earliest = min(dated.get((c, s), newest[c]) for s in rows.fixes[p])
                kept[i] = earliest - rows.dates[p] <= days * DAY_S
        return kept

    return keep


def blamed_by_at_most(n: int) -> Keep:
    """Drop buggy training rows blamed by more than `n` fixes."""
    return lambda rows, at, y: np.array([not y[i] or len(rows.fixes[p]) <= n for i, p in enumerate(at)], dtype=bool)


def narrow_fixes(n: int) -> Keep:
    """Drop buggy training rows every one of whose fixes blames more than `n` training rows."""

    def keep(rows: Rows, at: np.ndarray, y: np.ndarray) -> np.ndarray:
        blames = Counter((rows.codes[p], s) for p in at for s in rows.fixes[p])
        return np.array(
            [not y[i] or any(blames[(rows.codes[p], s)] <= n for s in rows.fixes[p]) for i, p in enumerate(at)],
            dtype=bool,
        )

    return keep


def every(*filters: Keep) -> Keep:
    """Keep a row only where every filter keeps it (each computed on the same training rows)."""
    return lambda rows, at, y: np.logical_and.reduce([f(rows, at, y) for f in filters])


class Filtered(ClassifierMixin, BaseEstimator):
    """`estimator` fitted on the training rows `keep` keeps (last column: the row's position, dropped from the
    inputs); it predicts every row. With fewer than two classes kept, it fits on every row."""

    def __init__(self, estimator: Any = None, keep: Keep | None = None, rows: Rows | None = None) -> None:
        self.estimator = estimator
        self.keep = keep
        self.rows = rows

    def fit(self, X: np.ndarray, y: np.ndarray) -> Filtered:
        assert self.keep is not None and self.rows is not None
        kept = self.keep(self.rows, X[:, -1].astype(np.int64), y)
        if len(np.unique(y[kept])) < 2:
            kept = np.ones(len(y), dtype=bool)
        self.kept_ = kept
        self.model_ = clone(self.estimator).fit(X[kept, :-1], y[kept])
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model_.predict_proba(X[:, :-1]))


FILTERS: dict[str, Keep] = {
    "each repository's first commit": first_commits(1),
    "each repository's first 50 commits": first_commits(50),
    "commits of > 10,000 changed lines": churn_at_most(10_000),
    "commits above the training rows' 99th churn percentile": churn_within_quantile(0.99),
    "commits above the training rows' 95th churn percentile": churn_within_quantile(0.95),
    "commits of > 100 files": files_at_most(100),
    "buggy labels first fixed > 1 year later": fixed_within(365.25),
    "buggy labels first fixed > 2 years later": fixed_within(2 * 365.25),
    "buggy labels blamed by > 5 fixes": blamed_by_at_most(5),
    "buggy labels whose every fix blames > 10 commits": narrow_fixes(10),
    # Added after the ten above lost (post hoc): the two with a positive mean gain together, and the literature's
    # cleaning all at once (first commit, 99th churn percentile, fixed > 2 years later, wide fixes).
    "commits above the 95th churn percentile and wide-fix labels": every(churn_within_quantile(0.95), narrow_fixes(10)),
    "first commits, commits above the 99th churn percentile, late and wide-fix labels": every(
        first_commits(1), churn_within_quantile(0.99), fixed_within(2 * 365.25), narrow_fixes(10)
    ),
}


def filtering_variants(
    frame: pd.DataFrame, logs: np.ndarray, logistic: Logistic, texts: pd.Series | None = None
) -> dict[str, tuple[np.ndarray, Callable[[float], Any]]]:
    """name → (the log1p metrics `logs` plus the row's position, factory taking C); `texts`: the rows' `fixed_by`
    (read from the shared CSV files when not given)."""
    rows = Rows.of(frame, fixed_by(frame) if texts is None else texts)
    inputs = np.column_stack([logs, np.arange(len(frame), dtype=np.float64)])

    def factory(keep: Keep) -> Callable[[float], Filtered]:
        return lambda C: Filtered(logistic(C), keep, rows)

    return {f"log1p, trained without {name}": (inputs, factory(keep)) for name, keep in FILTERS.items()}


def removed() -> str:
    """Per filter, the mean training rows it removes per fold (buggy, clean), on the folds of `bench/inputs.py`."""
    from bench.inputs import protocol_folds  # here: bench.inputs imports this module through bench.variants

    mature, choice_folds, all_folds, at = protocol_folds()
    rows = Rows.of(mature, fixed_by(mature))
    y = mature["buggy"].to_numpy()
    out: list[list[object]] = []
    for name, keep in FILTERS.items():
        cells: list[object] = [name]
        for folds in (choice_folds, all_folds):
            trains = [at[id(folds)][f.train] for f in folds.folds]
            gone = [~keep(rows, p, y[p]) for p in trains]
            buggy = np.mean([(g & (y[p] == 1)).sum() for g, p in zip(gone, trains, strict=True)])
            clean = np.mean([(g & (y[p] == 0)).sum() for g, p in zip(gone, trains, strict=True)])
            cells += [f"{buggy:.1f}", f"{clean:.1f}"]
        out.append(cells)
    sizes = [np.mean([len(f.train) for f in folds.folds]) for folds in (choice_folds, all_folds)]
    return "\n\n".join(
        [
            f"Training rows removed per fold, mean over the folds before the test period ({sizes[0]:.0f} training rows "
            f"on average) and over the folds on all mature rows ({sizes[1]:.0f}):",
            table(["filter", "buggy (before)", "clean (before)", "buggy (all rows)", "clean (all rows)"], out),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-append", action="store_true", help="print only (a trial run)")
    args = parser.parse_args()
    publish("Training-row filters: rows removed (`bench/filtering.py`)", removed(), args.no_append)


if __name__ == "__main__":
    main()
