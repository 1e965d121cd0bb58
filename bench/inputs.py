"""Inputs that transfer across repositories, and what the relative churn step costs at serving time.

    .venv/bin/python -m bench.inputs [--only transfer|latency] [--repeats 2000]

Transfer: the input variants the cross-project JIT literature suggests, each a class-balanced logistic regression
(C from the same grid as `commitrisk train`, best mean fold ROC AUC on the folds before the published test
period) unless named otherwise, on the protocol folds (`training.protocol`). Each is compared with the simplest
(log1p of the 15 metrics) by the choice's own rule (`training.choice.compare`: folds won, mean gain, its SE) on
the folds before the test period, and its means on all mature rows are shown beside. Rank normalisation uses
each repository's *earlier* commits only (a commit's percentile among them), and the pooled distribution of
all earlier commits while a repository has fewer than 30.

Latency: each family is fitted once per feature set on the pooled shared data with its default hyperparameters (the same
seed), exported as `commitrisk train` exports it but without the Platt map (it adds the same nodes to both) and
timed in one process with one intra-op thread, as the service runs it: median time of one row and of a
1,000-row batch, and the ratio relative churn / raw measured in the same run.
"""

from __future__ import annotations

import argparse
import bisect
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd
from sklearn.ensemble import BaggingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from app.contract import FEATURES, INPUT_NAME, PROBABILITY_OUTPUT
from bench.machine import append, table
from bench.train import SHARED
from training import choice, data, evaluate, export, model, protocol
from training.config import FEATURE_SETS, MEMBER_FAMILIES
from training.features import RelativeChurn

MIN_HISTORY = 30


def session(blob: bytes) -> ort.InferenceSession:
    """An onnxruntime session configured like the service's (one intra-op thread)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(blob, sess_options=options, providers=["CPUExecutionProvider"])


def median_us(run: ort.InferenceSession, rows: np.ndarray, repeats: int) -> float:
    """Median microseconds of one `run` call on `rows`."""
    feed = {INPUT_NAME: rows}
    for _ in range(20):
        run.run([PROBABILITY_OUTPUT], feed)
    times = []
    for _ in range(repeats):
        started = time.perf_counter_ns()
        run.run([PROBABILITY_OUTPUT], feed)
        times.append(time.perf_counter_ns() - started)
    return statistics.median(times) / 1000


def past_percentiles(frame: pd.DataFrame, min_history: int = MIN_HISTORY) -> np.ndarray:
    """[N, 15] mid-rank percentile of each metric among the same repository's earlier commits (pooled earlier
    commits of every repository while it has fewer than `min_history`); label-free and causal."""
    X = data.features(frame).astype(np.float64)
    out = np.zeros_like(X)
    pooled: list[list[float]] = [[] for _ in FEATURES]
    own: dict[str, list[list[float]]] = {}
    order = np.argsort(frame["author_date"].to_numpy(), kind="stable")
    for i in order:
        history = own.setdefault(str(frame["repository"].iat[i]), [[] for _ in FEATURES])
        for j, value in enumerate(X[i]):
            seen = history[j] if len(history[j]) >= min_history else pooled[j]
            if seen:
                out[i, j] = (bisect.bisect_left(seen, value) + bisect.bisect_right(seen, value)) / 2 / len(seen)
            else:
                out[i, j] = 0.5
        for j, value in enumerate(X[i]):
            bisect.insort(history[j], value)
            bisect.insort(pooled[j], value)
    return out


def _logistic(C: float) -> Pipeline:
    return Pipeline(
        [("scale", StandardScaler()), ("clf", LogisticRegression(C=C, class_weight="balanced", max_iter=5000))]
    )


def variants(frame: pd.DataFrame) -> dict[str, tuple[np.ndarray, Callable[[float], Any]]]:
    """name → (model inputs [N, k] for every row of `frame`, estimator factory taking C)."""
    X = data.features(frame).astype(np.float64)
    churn = RelativeChurn().fit(X).transform(X)
    ranks = past_percentiles(frame)
    return {
        "log1p metrics (the simplest)": (np.log1p(X), _logistic),
        "log1p + relative churn": (np.log1p(churn), _logistic),
        "per-repository past percentiles": (ranks, _logistic),
        "percentiles + log1p metrics": (np.hstack([ranks, np.log1p(X)]), _logistic),
        "bagged logistic (25 bootstraps)": (
            np.log1p(X),
            lambda C: BaggingClassifier(_logistic(C), n_estimators=25, random_state=42),
        ),
        "random forest, raw metrics": (
            X,
            lambda _C: RandomForestClassifier(100, class_weight="balanced", random_state=42),
        ),
        "random forest, log1p metrics": (
            np.log1p(X),
            lambda _C: RandomForestClassifier(100, class_weight="balanced", random_state=42),
        ),
    }


def fold_probabilities(inputs: np.ndarray, make: Callable[[float], Any], C: float, folds: protocol.Folds,
                       positions: np.ndarray) -> list[np.ndarray]:  # fmt: skip
    """Each fold's test probabilities (`positions` maps the folds' frame rows to rows of `inputs`)."""
    y = folds.frame["buggy"].to_numpy()
    found = []
    for fold in folds.folds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = make(C).fit(inputs[positions[fold.train]], y[fold.train])
        found.append(fitted.predict_proba(inputs[positions[fold.test]])[:, 1])
    return found


def fold_aucs(folds: protocol.Folds, probabilities: list[np.ndarray]) -> np.ndarray:
    """ROC AUC per fold."""
    y = folds.frame["buggy"].to_numpy()
    return np.array([evaluate.roc_auc(y[f.test], p) or 0.5 for f, p in zip(folds.folds, probabilities, strict=True)])


def transfer() -> str:
    """The variants on the folds before the test period (judged by the choice's rule) and on all mature rows."""
    mature, _ = data.drop_immature(data.load([SHARED]).frame, 90)
    mature = mature.sort_values(["author_date", "commit_id"], kind="stable").reset_index(drop=True)
    split = data.split_chronological(mature, 0.2, 0.2)
    before = pd.concat([split.train, split.validation], ignore_index=True)
    known = sorted(mature["repository"].unique())
    choice_folds = protocol.build(before, 0.2, 30, 30_000, seed=42, known=known)
    all_folds = protocol.build(mature, 0.2, 30, 30_000, seed=42, known=known)
    where = {c: i for i, c in enumerate(mature["commit_id"])}
    at = {id(f): np.array([where[c] for c in f.frame["commit_id"]]) for f in (choice_folds, all_folds)}
    arms: list[choice.Arm] = []
    rows: list[list[object]] = []
    for name, (inputs, make) in variants(mature).items():
        grid = model.LOGISTIC_C if "forest" not in name else (1.0,)
        tried = {C: fold_probabilities(inputs, make, C, choice_folds, at[id(choice_folds)]) for C in grid}
        aucs = {C: fold_aucs(choice_folds, ps) for C, ps in tried.items()}
        C = max(grid, key=lambda c: aucs[c].mean())
        arm = choice.Arm("logistic_regression", "raw", {"C": C}, tried[C], aucs[C], 0.0)
        arms.append(arm)
        evidence = fold_probabilities(inputs, make, C, all_folds, at[id(all_folds)])
        kinds = np.array([f.protocol for f in all_folds.folds])
        means = {kind: fold_aucs(all_folds, evidence)[kinds == kind].mean() for kind in protocol.PROTOCOLS}
        if len(arms) == 1:
            verdict = "the simplest: what the others must beat"
        else:
            wins, gain, se = choice.compare(arm, arms[0], choice_folds)
            needed = int(np.ceil(2 / 3 * len(choice_folds.folds)))
            kept = wins >= needed and gain > se
            verdict = (
                f"{'wins' if kept else 'loses'}: {wins}/{len(choice_folds.folds)} folds, {gain:+.4f} (SE {se:.4f})"
            )
        rows.append([name, f"{C:g}" if "forest" not in name else "—", f"{aucs[C].mean():.4f}",
                     f"{means['forward']:.4f}", f"{means['leave_one_out']:.4f}", verdict])  # fmt: skip
        print(rows[-1], flush=True)
    return "\n\n".join([
        f"Input variants on the protocol folds: {len(choice_folds.folds)} folds before the published test period "
        "(what the rule judges) and the means on all mature rows (forward, leave one repository out):",
        table(["inputs", "C", "folds before the test period", "forward (all rows)", "leave one out (all rows)",
               "against the simplest (rule: ≥ 2/3 of the folds, gain > 1 SE)"], rows),
    ])  # fmt: skip


def latency(repeats: int) -> str:
    """onnxruntime latency of each family on raw vs relative churn inputs, one process, one intra-op thread."""
    mature, _ = data.drop_immature(data.load([SHARED]).frame, 90)
    X, y = data.features(mature), mature["buggy"].to_numpy()
    one = np.ascontiguousarray(X[:1], dtype=np.float32)
    batch = np.ascontiguousarray(X[:1000], dtype=np.float32)
    rows: list[list[object]] = []
    for family in (*MEMBER_FAMILIES, "ensemble"):
        sessions = {}
        for features in FEATURE_SETS:
            fitted = model.fixed(family, {"features": features}, X, y, seed=42)
            sessions[features] = session(export.to_onnx(fitted.estimator, len(FEATURES)))
        single = {f: median_us(s, one, repeats) for f, s in sessions.items()}
        many = {f: median_us(s, batch, max(repeats // 10, 20)) for f, s in sessions.items()}
        rows.append([
            family, f"{single['raw']:.1f}", f"{single['relative_churn']:.1f}",
            f"{single['relative_churn'] / single['raw']:.2f}", f"{many['raw']:.0f}", f"{many['relative_churn']:.0f}",
            f"{many['relative_churn'] / many['raw']:.2f}",
        ])  # fmt: skip
    return "\n\n".join([
        "onnxruntime, one intra-op thread, default hyperparameters fitted on the pooled shared data; median of "
        f"{repeats} calls (1 row) and {max(repeats // 10, 20)} calls (1,000 rows), both inputs timed in "
        "the same process:",
        table(["family", "1 row raw µs", "1 row churn µs", "ratio", "1,000 rows raw µs", "1,000 rows churn µs",
               "ratio"], rows),
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["transfer", "latency"], help="run one part only")
    parser.add_argument("--repeats", type=int, default=2000, help="timed calls per cell (batch cells: a tenth)")
    args = parser.parse_args()
    if args.only != "latency":
        append("Inputs that transfer (`bench/inputs.py`)", transfer())
    if args.only != "transfer":
        append("Relative churn at serving time (`bench/inputs.py`)", latency(args.repeats))


if __name__ == "__main__":
    main()
