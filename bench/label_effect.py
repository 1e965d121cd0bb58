"""Does the label rule change the model? Train on one set of repositories' labels, score others' dataset labels.

For each label source — the datasets' own `buggy` and each mined variant of `bench/fidelity.py --variants` — a
plain class-balanced log1p logistic regression and a random forest are fitted on the mature rows of the mined
repositories (the datasets' metrics, so only the labels differ), then scored by ROC AUC against the published
labels of the repositories nobody mined (YCSB and guice: no upstream bundle), mature rows only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from app.contract import FEATURES
from bench.machine import table

METRICS = list(FEATURES)
HELD_OUT = ("YCSB", "guice")
IMMATURE_DAYS = 90


def _mature(name: str, shared: Path) -> pd.DataFrame:
    columns = ["commit_hash", "author_date", "buggy", *METRICS]
    frame = pd.read_csv(shared / "data" / "commits" / f"{name}.csv", usecols=columns, encoding_errors="replace")
    cut = frame["author_date"].max() - IMMATURE_DAYS * 86400
    return frame[frame["author_date"] <= cut]


def _truth(frame: pd.DataFrame) -> np.ndarray:
    return frame["buggy"].astype(str).str.lower().eq("true").to_numpy()


def _models() -> dict[str, object]:
    return {
        "logistic regression": make_pipeline(
            StandardScaler(), LogisticRegression(C=0.01, class_weight="balanced", max_iter=5000)
        ),
        "random forest": RandomForestClassifier(
            200, class_weight="balanced", min_samples_leaf=3, random_state=1, n_jobs=1
        ),
    }


def label_effect(sources: dict[str, dict[str, Path] | None], names: list[str], shared: Path) -> str:
    """`sources`: label source → {repository of `names`: its mined CSV} (None: the datasets' own labels)."""
    tests = {name: _mature(name, shared) for name in HELD_OUT}
    rows: list[list[object]] = []
    for source, csvs in sources.items():
        inputs, labels = [], []
        for name in names:
            frame = _mature(name, shared)
            if csvs is None:
                label = _truth(frame)
            else:
                mined = pd.read_csv(csvs[name], usecols=["commit_hash", "buggy"], encoding_errors="replace")
                buggy = dict(zip(mined["commit_hash"], mined["buggy"].astype(str).str.lower().eq("true"), strict=True))
                frame = frame[frame["commit_hash"].isin(buggy)]
                label = frame["commit_hash"].map(buggy).to_numpy(dtype=bool)
            inputs.append(np.log1p(frame[METRICS].to_numpy(float)))
            labels.append(label)
        X, y = np.vstack(inputs), np.concatenate(labels)
        cells: list[object] = [source, f"{100 * y.mean():.1f}"]
        for model in _models().values():
            model.fit(X, y)  # type: ignore[attr-defined]
            aucs = [roc_auc_score(_truth(t), model.predict_proba(np.log1p(t[METRICS].to_numpy(float)))[:, 1])  # type: ignore[attr-defined]
                    for t in tests.values()]  # fmt: skip
            cells.append(" / ".join(f"{a:.3f}" for a in aucs) + f" (mean **{np.mean(aucs):.3f}**)")
        rows.append(cells)
    return "\n".join([
        f"Trained on {' + '.join(names)} (mature rows, the datasets' metrics) with each label source; ROC AUC on the "
        f"published labels of {' / '.join(HELD_OUT)} (mature rows):",
        "",
        table(["labels trained on", "buggy %", *(f"{m}: {' / '.join(HELD_OUT)}" for m in _models())], rows),
    ])  # fmt: skip
