"""Rolling-origin backtest of the feature set and the model-choice rule, on periods before the published test period.

    .venv/bin/python -m bench.choice [--origins 0.4,0.45,...,0.8] [--budget 12]

For each origin f the pooled shared data (mature rows, time order) is cut to its oldest share f and split as
`commitrisk train` splits it (test = newest 20%, validation = newest 20% of the rest). For each feature set
(`--features raw`: the 15 metrics; `relative_churn`: plus the ratios of `training.features`) every family is
searched on the training period and the ensemble averages the three winners; each candidate is refitted on
train + validation and scored on that origin's test period. Origins ≤ 0.8 never touch the newest 20% of the
data — the test period `bench.train` reports — so a default chosen here was not chosen on that test period.

Rules compared, per feature set: the best validation ROC AUC of the four candidates (`--ensemble-margin-se
0`), the ensemble unless the best beats it by more than one paired DeLong SE (`--ensemble-margin-se 1`) and
always the ensemble; all against the reference approach, a random forest searched on the raw metrics.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from bench.machine import append, table
from bench.train import SHARED
from training import choice, data, evaluate, model
from training.config import ALL_FAMILIES, FEATURE_SETS, MEMBER_FAMILIES, TrainConfig

ORIGINS = "0.4,0.45,0.5,0.55,0.6,0.65,0.7,0.75,0.8"
RULES = ("margin 0", "margin 1", "always the ensemble")


def origin(mature: pd.DataFrame, share: float, budget: int) -> dict[str, object]:
    """Per feature set: validation and test ROC AUC of every candidate and each rule's pick, at one origin."""
    split = data.split_chronological(mature.iloc[: int(len(mature) * share)], 0.2, 0.2)
    X_train, y_train = data.features(split.train), split.train["buggy"].to_numpy()
    X_val, y_val = data.features(split.validation), split.validation["buggy"].to_numpy()
    X_test, y_test = data.features(split.test), split.test["buggy"].to_numpy()
    fit = pd.concat([split.train, split.validation], ignore_index=True)
    X_fit, y_fit = data.features(fit), fit["buggy"].to_numpy()
    found: dict[str, object] = {"share": share, "validation_rows": len(y_val), "validation_buggy": int(y_val.sum())}
    found["test_rows"] = len(y_test)
    for features in FEATURE_SETS:
        members = [
            model.search(f, X_train, y_train, budget=budget, folds=3, seed=42, n_jobs=-1, features=features)
            for f in MEMBER_FAMILIES
        ]
        candidates = [*members, model.combine(members)]
        names = [c.family for c in candidates]
        p_val = [model.predict(c.estimator, X_val) for c in candidates]
        val, _ = choice.delong(y_val, p_val)
        fitted = [model.refit(c, X_fit, y_fit) for c in candidates]
        test = [evaluate.roc_auc(y_test, model.predict(f, X_test)) or 0.0 for f in fitted]
        picks = {
            "margin 0": choice.choose(names, y_val, p_val, 0.0).name,
            "margin 1": choice.choose(names, y_val, p_val, 1.0).name,
            "always the ensemble": "ensemble",
        }
        found[features] = {
            "validation": dict(zip(names, val.tolist(), strict=True)),
            "test": dict(zip(names, test, strict=True)),
            "picks": picks,
        }
    return found


def summarise(results: list[dict[str, object]]) -> list[list[object]]:
    """Rows: rule × feature set → mean test ROC AUC of its picks, and against the raw reference random forest."""
    reference = np.array([r["raw"]["test"]["random_forest"] for r in results])  # type: ignore[index]
    rows: list[list[object]] = []
    for features in FEATURE_SETS:
        for rule in (*RULES, "random forest alone"):
            if rule == "random forest alone":
                chosen = np.array([r[features]["test"]["random_forest"] for r in results])  # type: ignore[index]
            else:
                chosen = np.array([r[features]["test"][r[features]["picks"][rule]] for r in results])  # type: ignore[index]
            wins = int(np.sum(chosen > reference))
            rows.append([features, rule, f"{chosen.mean():.4f}", f"{(chosen - reference).mean():+.4f}",
                         f"{wins}/{len(results)}"])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--origins", default=ORIGINS, help="shares of the data each origin ends at")
    parser.add_argument("--budget", type=int, default=TrainConfig().budget)
    args = parser.parse_args()
    mature, _ = data.drop_immature(data.load([SHARED]).frame, 90)
    mature = mature.sort_values("author_date", kind="stable").reset_index(drop=True)
    results = []
    for share in args.origins.split(","):
        results.append(origin(mature, float(share), args.budget))
        print(f"origin {share} done", flush=True)

    per_origin = []
    for r in results:
        for features in FEATURE_SETS:
            found = r[features]
            assert isinstance(found, dict)
            val, test, picks = found["validation"], found["test"], found["picks"]
            cells = [f"{val[f]:.3f} / {test[f]:.3f}" for f in ALL_FAMILIES]
            rows = f"{r['validation_rows']} ({r['validation_buggy']} buggy) / {r['test_rows']}"
            per_origin.append([f"{r['share']:.2f}", features, rows, *cells, picks["margin 0"], picks["margin 1"]])
    body = "\n\n".join([
        f"Rolling origins on the pooled shared data (budget {args.budget} × 3 time-ordered folds per family); each "
        "origin keeps the oldest share of the mature commits and splits it like `commitrisk train`. Cells: "
        "validation / test ROC AUC; the test periods of origins ≤ 0.8 end before the published test period.",
        table(["origin", "features", "validation rows / test rows", *ALL_FAMILIES, "margin 0", "margin 1"],
              per_origin),
        "Test ROC AUC of each rule's pick, averaged over the origins, against the reference random forest "
        "(searched on the raw metrics) at the same origin:",
        table(["features", "rule", "mean test ROC AUC", "vs reference forest", "beats it"], summarise(results)),
    ])  # fmt: skip
    print(body)
    append("Model choice backtest (`bench/choice.py`)", body)


if __name__ == "__main__":
    main()
