"""Rolling-origin backtest of the model choice, on periods before the published test period.

    .venv/bin/python -m bench.choice [--origins 0.4,0.5,0.6,0.7,0.8] [--budget 3] [--jobs 1]

For each origin f the pooled shared data (mature rows, time order) is cut to its oldest share f and split as
`commitrisk train` splits it (test = newest 20%, validation = newest 20% of the rest). The choice runs exactly as
in `commitrisk train` on the protocol folds of that origin's train + validation rows; then every strategy's pick
is refitted on those rows and scored on the origin's test period — per repository (the mean of the repositories'
ROC AUCs: what a repository calling the service sees) and pooled. Origins ≤ 0.8 never touch the newest 20% of
the data, the test period `bench.train` reports, so nothing here was decided on it.

Strategies: the default rule (simplest unless a more complex candidate wins ≥ 2/3 of the folds by > 1 SE), a
lenient rule (> 1/2 of the folds, any gain), the best mean fold ROC AUC, the plain logistic regression (C = 1,
raw metrics, no choice) and always the ensemble on relative churn (the previous default's family and inputs).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from bench.machine import append, table
from bench.train import SHARED
from training import choice, data, evaluate, model, protocol
from training.config import TrainConfig

ORIGINS = "0.4,0.5,0.6,0.7,0.8"
STRATEGIES = ("default rule", "lenient rule", "best mean", "plain LR", "ensemble (relative churn)")


def picks(chosen: choice.Chosen) -> dict[str, protocol.Job]:
    """Each strategy's recipe, from one choice's candidates (no refit: the rule re-applied to the same folds)."""
    arms = chosen.arms
    lenient, _ = choice.apply_rule(arms, chosen.folds, majority=0.5, margin_se=0.0)
    best = max(arms, key=lambda a: a.aucs.mean())
    ensemble = next(a for a in arms if (a.family, a.features) == ("ensemble", "relative_churn"))
    return {
        "default rule": (chosen.family, chosen.params),
        "lenient rule": (lenient.family, lenient.params),
        "best mean": (best.family, best.params),
        "plain LR": protocol.BASELINE,
        "ensemble (relative churn)": (ensemble.family, ensemble.params),
    }


def scored(job: protocol.Job, split: data.Split) -> tuple[float, float]:
    """(mean of the per-repository ROC AUCs, pooled ROC AUC) on the split's test period, fitted on the rest."""
    fit = pd.concat([split.train, split.validation], ignore_index=True)
    fitted = model.fixed(job[0], job[1], data.features(fit), fit["buggy"].to_numpy(), seed=42)
    p = model.predict(fitted.estimator, data.features(split.test))
    y, owner = split.test["buggy"].to_numpy(), split.test["repository"].to_numpy()
    per = [evaluate.roc_auc(y[owner == r], p[owner == r]) for r in np.unique(owner)]
    return float(np.mean([a for a in per if a is not None])), float(evaluate.roc_auc(y, p) or 0.0)


def label(job: protocol.Job) -> str:
    return f"{job[0]} ({job[1].get('features', 'raw')})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--origins", default=ORIGINS, help="shares of the data each origin ends at")
    parser.add_argument("--budget", type=int, default=TrainConfig().budget)
    parser.add_argument("--jobs", type=int, default=1, help="parallel fold fits")
    args = parser.parse_args()
    mature, _ = data.drop_immature(data.load([SHARED]).frame, 90)
    mature = mature.sort_values(["author_date", "commit_id"], kind="stable").reset_index(drop=True)
    config = TrainConfig(budget=args.budget, n_jobs=args.jobs)
    results: dict[str, list[tuple[float, float]]] = {s: [] for s in STRATEGIES}
    per_origin: list[list[object]] = []
    for share in (float(s) for s in args.origins.split(",")):
        split = data.split_chronological(mature.iloc[: int(len(mature) * share)], 0.2, 0.2)
        known = sorted(mature["repository"].unique())
        folds = choice.folds_of(config, split.train, split.validation, known)
        chosen = choice.choose(config, folds, lambda _m: None)
        found = {s: scored(job, split) for s, job in picks(chosen).items()}
        for s, figures in found.items():
            results[s].append(figures)
        jobs = picks(chosen)
        per_origin.append([f"{share:.2f}", len(split.test), len(folds.folds), label(jobs["default rule"]),
                           *(f"{found[s][0]:.3f}" for s in STRATEGIES), label(jobs["best mean"])])  # fmt: skip
        print(f"origin {share}: {per_origin[-1]}", flush=True)
    base = np.array(results["plain LR"])
    summary: list[list[object]] = []
    for s in STRATEGIES:
        found_s = np.array(results[s])
        gain = found_s[:, 0] - base[:, 0]
        counts = f"{int(np.sum(gain > 0))}/{len(gain)}", f"{int(np.sum(gain < -0.01))}/{len(gain)}"
        summary.append(
            [s, f"{found_s[:, 0].mean():.4f}", f"{found_s[:, 1].mean():.4f}", f"{gain.mean():+.4f}", *counts]
        )
    body = "\n\n".join([
        f"Rolling origins on the pooled shared data (choice budget {args.budget}, 8 folds per origin where every "
        "repository has enough commits); each origin keeps the oldest share of the mature commits and splits it "
        "like `commitrisk train`. Cells: mean of the per-repository ROC AUCs on that origin's test period.",
        table(["origin", "test rows", "folds", "default rule picks", *STRATEGIES, "best mean picks"], per_origin),
        "Averaged over the origins, against the plain logistic regression at the same origin:",
        table(["strategy", "per-repository mean ROC AUC", "pooled ROC AUC", "vs plain LR", "beats it",
               "more than 0.01 below it"], summary),
    ])  # fmt: skip
    append("Model choice backtest (`bench/choice.py`)", body)


if __name__ == "__main__":
    main()
