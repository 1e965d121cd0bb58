"""Training benchmark: `commitrisk train` time and memory, and the published recipe per repository beside plain models.

    .venv/bin/python -m bench.train [--skip-large] [--rows 1000000] [--jobs 1]

1. `commitrisk train` on the four shared datasets pooled (default options), and on a 1,000,000-row resample.
2. The published recipe on the protocol folds of all mature rows — per repository forward in time, and leave one
   repository out — beside a plain logistic regression on log1p metrics (class-balanced, C = 1) and a plain random
   forest (100 trees, class-balanced, raw metrics) fitted on the same folds in this run; the difference to the
   plain logistic regression with its paired DeLong 95% interval. Leave-one-out is also scored on the held-out
   repository's commits of the published test period only: rows the choice never saw.
3. The pooled chronological test period: the published model (its ONNX file) beside the two plain models.
The choice inside `commitrisk train` only ever saw folds before the published test period.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.contract import FEATURES
from bench.machine import append, table
from training import data, evaluate, export, model, protocol

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "commits"
PLAIN_RF: protocol.Job = ("random_forest", {"features": "raw", "n_estimators": 100, "class_weight": "balanced"})
MEANS = ("cv_roc_auc", "forward_roc_auc", "leave_one_out_roc_auc")
TARGETS = {"leave_one_out": 0.75, "forward": 0.74, "worst_gap": -0.01, "pooled": 0.74, "recall": 0.5, "wall": 120.0}


def timed_train(args: list[str]) -> tuple[float, float, dict[str, Any]]:
    """(wall seconds, peak RSS MiB, JSON summary) of one `commitrisk train` child process."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "training", "train", *args, "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)  # fmt: skip
    assert child.stdout is not None
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"train failed with exit code {child.returncode}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, json.loads(out)


def resample(rows: int, target: Path, seed: int = 7) -> None:
    """Bootstrap `rows` mature commits with fresh ids; dates jittered by ≤ 1 day so time order stays realistic."""
    frame, _ = data.drop_immature(data.load([SHARED]).frame, 90)
    rng = np.random.default_rng(seed)
    picked = frame.iloc[rng.integers(0, len(frame), rows)].reset_index(drop=True)
    out = pd.DataFrame({
        "commit_id": [f"resample_{i:07d}" for i in range(rows)],
        "author_date": picked["author_date"].to_numpy() + rng.integers(0, 86_400, rows),
        "buggy": np.where(picked["buggy"].to_numpy() == 1, "true", "false"),
        "repository_id": picked["repository"].to_numpy(),
    })  # fmt: skip
    for name in FEATURES:
        out[name] = picked[name].to_numpy()
    out.to_csv(target, index=False)


def names() -> dict[str, str]:
    """repository_id → the dataset's file name, for readable tables."""
    found = {}
    for path in sorted(SHARED.glob("*.csv")):
        found[str(pd.read_csv(path, usecols=["repository_id"], nrows=1, dtype=str).iloc[0, 0])] = path.stem
    return found


def interval(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> str:
    """ROC AUC(a) − ROC AUC(b) on the same rows with its paired DeLong 95% interval."""
    diff = (evaluate.roc_auc(y, a) or 0.0) - (evaluate.roc_auc(y, b) or 0.0)
    se = float(np.sqrt(protocol.difference_variance(y, a, b)))
    return f"{diff:+.3f} [{diff - 1.96 * se:+.3f}, {diff + 1.96 * se:+.3f}]"


def per_repository(run: dict[str, Any], jobs: int) -> tuple[dict[str, list[list[object]]], dict[str, float]]:
    """Per protocol, one row per repository (recipe, plain LR, plain RF), and the figures the targets read."""
    mature, _ = data.drop_immature(data.load([SHARED]).frame, 90)
    test_start = data.split_chronological(mature, 0.2, 0.2).test["author_date"].min()
    folds = protocol.build(mature, 0.2, 30, 30_000, seed=42, known=sorted(mature["repository"].unique()))
    recipe: protocol.Job = (run["model_type"], run["params"])
    found = protocol.probabilities([recipe, protocol.BASELINE, PLAIN_RF], folds, 42, jobs)
    published = {(f["protocol"], f["repository"]): f for kind in ("forward", "leave_one_out")
                 for f in run["protocol"][kind]["folds"]}  # fmt: skip
    label = names()
    rows: dict[str, list[list[object]]] = {"forward": [], "leave_one_out": []}
    aucs: dict[str, list[tuple[float, float, float]]] = {"forward": [], "leave_one_out": [], "unseen": []}
    for i, fold in enumerate(folds.folds):
        test = folds.frame.iloc[fold.test]
        y, effort = test["buggy"].to_numpy(), test["effort"].to_numpy()
        p, lr, rf = (found[j][i] for j in range(3))
        auc = [evaluate.roc_auc(y, q) or 0.0 for q in (p, lr, rf)]
        # The run's own evidence and this recomputation fit the same folds with the same seed.
        assert abs(published[(fold.protocol, fold.repository)]["roc_auc"] - auc[0]) < 1e-6, fold.repository
        aucs[fold.protocol].append((auc[0], auc[1], auc[2]))
        name = label.get(fold.repository, fold.repository)
        effortful = f"{evaluate.recall_at_effort(y, p, effort):.3f}", f"{evaluate.popt(y, p, effort):.3f}"
        row: list[object] = [name, len(y), int(y.sum()), *(f"{a:.3f}" for a in auc), interval(y, p, lr), *effortful]
        if fold.protocol == "leave_one_out":
            late = test["author_date"].to_numpy() >= test_start
            unseen = [evaluate.roc_auc(y[late], q[late]) or 0.0 for q in (p, lr, rf)]
            aucs["unseen"].append((unseen[0], unseen[1], unseen[2]))
            row += [int(late.sum()), " / ".join(f"{a:.3f}" for a in unseen)]
        rows[fold.protocol].append(row)
    for kind, found_rows in rows.items():
        means = np.mean(aucs[kind], axis=0)
        mean_row: list[object] = ["**mean**", "", "", *(f"**{m:.3f}**" for m in means), "", "", ""]
        if kind == "leave_one_out":
            mean_row += ["", " / ".join(f"{m:.3f}" for m in np.mean(aucs["unseen"], axis=0))]
        found_rows.append(mean_row)
    gaps = [a - b for kind in ("forward", "leave_one_out") for a, b, _ in aucs[kind]]
    figures = {kind: float(np.mean([a for a, _, _ in aucs[kind]])) for kind in ("forward", "leave_one_out")}
    figures["worst_gap"] = float(min(gaps))
    for kind in ("forward", "leave_one_out"):
        figures[f"{kind}_lr"] = float(np.mean([b for _, b, _ in aucs[kind]]))
        figures[f"{kind}_rf"] = float(np.mean([c for _, _, c in aucs[kind]]))
    return rows, figures


def pooled_test(models: Path, run: dict[str, Any]) -> list[list[object]]:
    """The published model's ONNX scores on the pooled test period beside the plain models fitted on train + val."""
    mature, _ = data.drop_immature(data.load([SHARED]).frame, 90)
    split = data.split_chronological(mature, 0.2, 0.2)
    fit = pd.concat([split.train, split.validation], ignore_index=True)
    X_test, y, effort = data.features(split.test), split.test["buggy"].to_numpy(), split.test["effort"].to_numpy()
    published = export.onnx_probabilities((models / str(run["version"]) / "model.onnx").read_bytes(), X_test)
    plain = {}
    for name, (family, params) in (("plain logistic regression", protocol.BASELINE), ("plain random forest", PLAIN_RF)):
        fitted = model.fixed(family, params, data.features(fit), fit["buggy"].to_numpy(), seed=42)
        plain[name] = model.predict(fitted.estimator, X_test)
    rows: list[list[object]] = []
    for name, p in (("published recipe", published), *plain.items()):
        versus = "—" if p is published else interval(y, published, p)
        rows.append([name, f"{evaluate.roc_auc(y, p):.3f}", f"{evaluate.recall_at_effort(y, p, effort):.3f}",
                     f"{evaluate.popt(y, p, effort):.3f}", versus])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large resample")
    parser.add_argument("--skip-large", action="store_true", help="skip the large resample")
    parser.add_argument("--jobs", type=int, default=1, help="parallel fold fits of the comparison (the run: all)")
    args = parser.parse_args()
    timing: list[list[object]] = []
    with tempfile.TemporaryDirectory() as scratch:
        wall, rss, pooled = timed_train(["--data", str(SHARED), "--models", f"{scratch}/pooled"])
        timing.append(["pooled shared data", pooled["rows_loaded"], f"{wall:.1f}", f"{rss:.0f}",
                       pooled["model_type"], f"{pooled['test_metrics']['roc_auc']:.3f}"])  # fmt: skip
        pooled_wall = wall
        test_rows = pooled_test(Path(scratch) / "pooled", pooled)
        if not args.skip_large:
            big = Path(scratch) / "resample.csv"
            resample(args.rows, big)
            wall, rss, large = timed_train(["--data", str(big), "--models", f"{scratch}/large"])
            timing.append([f"{args.rows:,}-row resample", large["rows_loaded"], f"{wall:.1f}", f"{rss:.0f}",
                           large["model_type"], f"{large['test_metrics']['roc_auc']:.3f}"])  # fmt: skip
    rows, figures = per_repository(pooled, args.jobs)
    test = pooled["test_metrics"]
    targets: list[list[object]] = [
        ["leave-one-repository-out mean ROC AUC", f"≥ {TARGETS['leave_one_out']}", f"{figures['leave_one_out']:.3f}",
         f"{figures['leave_one_out_lr']:.3f} / {figures['leave_one_out_rf']:.3f}"],
        ["per-repository forward mean ROC AUC", f"≥ {TARGETS['forward']}", f"{figures['forward']:.3f}",
         f"{figures['forward_lr']:.3f} / {figures['forward_rf']:.3f}"],
        ["worst repository: recipe − plain LR", f"≥ {TARGETS['worst_gap']}", f"{figures['worst_gap']:+.3f}", ""],
        ["pooled chronological test ROC AUC", f"≥ {TARGETS['pooled']}", f"{test['roc_auc']:.3f}", ""],
        ["pooled test Recall@20%Effort", f"≥ {TARGETS['recall']}", f"{test['recall_at_20_effort']:.3f}", ""],
        ["default training wall time (s)", f"< {TARGETS['wall']:.0f}", f"{pooled_wall:.1f}", ""],
    ]  # fmt: skip
    head = ["repository", "test rows", "buggy", "recipe", "plain LR", "plain RF", "recipe − LR [95% CI]",
            "Recall@20%Effort", "Popt"]  # fmt: skip
    choice: list[list[object]] = [
        [c["name"], c["params"].get("features", "raw"), *(f"{c[k]:.4f}" for k in MEANS), c["verdict"]]
        for c in pooled["candidates"]
    ]
    body = "\n\n".join([
        f"`commitrisk train`, default options; load average before the run: {os.getloadavg()[0]:.2f}.",
        table(["data", "rows", "wall s", "peak RSS MiB", "chosen", "pooled test ROC AUC"], timing),
        f"Published recipe: `{pooled['model_type']}` {json.dumps(pooled['params'])}. Targets (plain LR / plain RF "
        "measured in this run beside it):",
        table(["figure", "target", "published recipe", "plain LR / plain RF"], targets),
        "Per repository, forward in time (each repository's newest 20% of mature commits; every older commit trains):",
        table(head, rows["forward"]),
        "Leave one repository out (the other three train); the last columns score only the held-out repository's "
        "commits in the published test period — rows the choice never saw (recipe / plain LR / plain RF):",
        table([*head, "test-period rows", "test period only"], rows["leave_one_out"]),
        "Pooled chronological test period (the published model's ONNX file; plain models fitted on train + "
        "validation):",
        table(["model", "ROC AUC", "Recall@20%Effort", "Popt", "published − this [95% CI]"], test_rows),
        f"The choice — {pooled['protocol']['choice']}. Mean fold ROC AUC of each candidate and the rule's verdict:",
        table(["family", "inputs", "all folds", "forward", "leave one out", "verdict"], choice),
    ])  # fmt: skip
    append("Training (`bench/train.py`)", body)


if __name__ == "__main__":
    main()
