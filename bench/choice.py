"""Rolling-origin backtest of the model-choice rule, on periods that end before the published test period.

    .venv/bin/python -m bench.choice [--origins 0.5,0.6,0.7,0.8] [--budget 12]

For each origin f the pooled shared data (mature rows, time order) is cut to its oldest share f and split as
`commitrisk train` splits it (test = newest 20%, validation = newest 20% of the rest). Every family is searched
on the training period, the ensemble averages the three winners; each candidate is refitted on train +
validation and scored on that origin's test period. Origins ≤ 0.8 never touch the newest 20% of the data — the
test period `bench.train` reports — so a rule chosen here was not chosen on that test period.

Rules compared: the best validation ROC AUC among the single families (before the ensemble existed), the same
with the ensemble as a fourth candidate (`--ensemble-margin-se 0`), the ensemble whenever it is within one
paired DeLong SE of the best (`--ensemble-margin-se 1`), always the ensemble, and the reference random forest.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from bench.machine import append, table
from bench.train import SHARED
from training import choice, data, evaluate, model
from training.config import ALL_FAMILIES, MEMBER_FAMILIES, TrainConfig

RULES = {
    "best single family (before)": lambda picks: picks["single"],
    "best of four (margin 0)": lambda picks: picks["margin0"],
    "ensemble within 1 SE (margin 1)": lambda picks: picks["margin1"],
    "always the ensemble": lambda picks: "ensemble",
    "reference random forest": lambda picks: "random_forest",
}


def origin(mature: pd.DataFrame, share: float, budget: int) -> dict[str, object]:
    """Validation and test ROC AUC of every candidate, and each rule's pick, at one origin."""
    split = data.split_chronological(mature.iloc[: int(len(mature) * share)], 0.2, 0.2)
    X_train, y_train = data.features(split.train), split.train["buggy"].to_numpy()
    X_val, y_val = data.features(split.validation), split.validation["buggy"].to_numpy()
    X_test, y_test = data.features(split.test), split.test["buggy"].to_numpy()
    fit = pd.concat([split.train, split.validation], ignore_index=True)
    X_fit, y_fit = data.features(fit), fit["buggy"].to_numpy()
    members = [model.search(f, X_train, y_train, budget=budget, folds=3, seed=42, n_jobs=-1) for f in MEMBER_FAMILIES]
    candidates = [*members, model.combine(members)]
    names = [c.family for c in candidates]
    p_val = [model.predict(c.estimator, X_val) for c in candidates]
    val, _ = choice.delong(y_val, p_val)
    test = [evaluate.roc_auc(y_test, model.predict(model.refit(c, X_fit, y_fit), X_test)) or 0.0 for c in candidates]
    picks = {
        "single": choice.choose(names[:3], y_val, p_val[:3], 0.0).name,
        "margin0": choice.choose(names, y_val, p_val, 0.0).name,
        "margin1": choice.choose(names, y_val, p_val, 1.0).name,
    }
    return {
        "share": share, "validation_rows": len(y_val), "validation_buggy": int(y_val.sum()), "test_rows": len(y_test),
        "validation": dict(zip(names, val.tolist(), strict=True)), "test": dict(zip(names, test, strict=True)),
        "picks": picks,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--origins", default="0.5,0.6,0.7,0.8", help="shares of the data each origin ends at")
    parser.add_argument("--budget", type=int, default=TrainConfig().budget)
    args = parser.parse_args()
    mature, _ = data.drop_immature(data.load([SHARED]).frame, 90)
    mature = mature.sort_values("author_date", kind="stable").reset_index(drop=True)
    results = [origin(mature, float(share), args.budget) for share in args.origins.split(",")]

    per_origin = []
    for r in results:
        val, test, picks = r["validation"], r["test"], r["picks"]
        assert isinstance(val, dict) and isinstance(test, dict) and isinstance(picks, dict)
        cells = [f"{val[f]:.3f} / {test[f]:.3f}" for f in ALL_FAMILIES]
        rows = f"{r['validation_rows']} ({r['validation_buggy']} buggy) / {r['test_rows']}"
        per_origin.append([f"{r['share']:.2f}", rows, *cells, picks["single"], picks["margin0"], picks["margin1"]])
    summary = []
    reference = np.array([r["test"]["random_forest"] for r in results])  # type: ignore[index]
    for rule, pick in RULES.items():
        chosen = np.array([r["test"][pick(r["picks"])] for r in results])  # type: ignore[index]
        wins = int(np.sum(chosen > reference))
        summary.append([rule, f"{chosen.mean():.4f}", f"{(chosen - reference).mean():+.4f}", f"{wins}/{len(results)}"])
    body = "\n\n".join([
        f"Rolling origins on the pooled shared data (budget {args.budget} × 3 time-ordered folds per family); each "
        "origin keeps the oldest share of the mature commits and splits it like `commitrisk train`. Cells: "
        "validation / test ROC AUC; the test periods of origins ≤ 0.8 end before the published test period.",
        table(["origin", "validation rows / test rows", *ALL_FAMILIES, "best single", "margin 0", "margin 1"],
              per_origin),
        "Test ROC AUC of each rule's pick, averaged over the origins, and against the reference random forest:",
        table(["rule", "mean test ROC AUC", "vs random forest", "beats random forest"], summary),
    ])  # fmt: skip
    append("Model choice backtest (`bench/choice.py`)", body)


if __name__ == "__main__":
    main()
