"""Inputs that transfer across repositories, and what the relative churn step costs at serving time.

    .venv/bin/python -m bench.inputs [--only transfer|latency] [--variant NAME-PART ...] [--repeats 2000] [--no-append]

Transfer: the input variants the cross-project JIT literature suggests, each a class-balanced logistic regression
(C from the same grid as `commitrisk train`, best mean fold ROC AUC on the folds before the published test
period) unless named otherwise, on the protocol folds (`training.protocol`). Each is compared with the simplest
(log1p of the 15 metrics) by the choice's own rule (`training.choice.compare`: folds won, mean gain, its SE) on
the folds before the test period, and its means on all mature rows are shown beside. The variants, and how the
per-repository normalisations use earlier commits only, are in `bench/variants.py`.

Latency: each family is fitted once per feature set on the pooled shared data with its default hyperparameters (the same
seed), exported as `commitrisk train` exports it but without the Platt map (it adds the same nodes to both) and
timed in one process with one intra-op thread, as the service runs it: median time of one row and of a
1,000-row batch, and the ratio relative churn / raw measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import onnxruntime as ort
import pandas as pd

from app.contract import FEATURES, INPUT_NAME, PROBABILITY_OUTPUT
from bench.machine import publish, table
from bench.train import SHARED
from bench.variants import variants
from training import choice, data, evaluate, export, model, protocol
from training.config import FEATURE_SETS, MEMBER_FAMILIES


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


def protocol_folds() -> tuple[pd.DataFrame, protocol.Folds, protocol.Folds, dict[int, np.ndarray]]:
    """The mature shared rows (time-ordered), the folds before the published test period, the folds on all
    mature rows, and per folds (by id) the positions of their frame's rows in the mature rows."""
    mature, _ = data.drop_immature(data.load([SHARED]).frame, 90)
    mature = mature.sort_values(["author_date", "commit_id"], kind="stable").reset_index(drop=True)
    split = data.split_chronological(mature, 0.2, 0.2)
    before = pd.concat([split.train, split.validation], ignore_index=True)
    known = sorted(mature["repository"].unique())
    choice_folds = protocol.build(before, 0.2, 30, 30_000, seed=42, known=known)
    all_folds = protocol.build(mature, 0.2, 30, 30_000, seed=42, known=known)
    where = {c: i for i, c in enumerate(mature["commit_id"])}
    at = {id(f): np.array([where[c] for c in f.frame["commit_id"]]) for f in (choice_folds, all_folds)}
    return mature, choice_folds, all_folds, at


def transfer(chosen: Sequence[str] = ()) -> str:
    """The variants on the folds before the test period (judged by the choice's rule) and on all mature rows;
    with `chosen`, only the simplest and the variants whose name contains one of them."""
    mature, choice_folds, all_folds, at = protocol_folds()
    arms: list[choice.Arm] = []
    rows: list[list[object]] = []
    every = variants(mature)
    simplest = next(iter(every))
    for name, (inputs, make) in every.items():
        if chosen and name != simplest and not any(part in name for part in chosen):
            continue
        # A factory may carry its own grid (bench/unsupervised.py: none for a ranker, C × weight for a blend).
        grid: Sequence[Any] = getattr(make, "grid", model.LOGISTIC_C if "forest" not in name else (1.0,))
        tried = {C: fold_probabilities(inputs, make, C, choice_folds, at[id(choice_folds)]) for C in grid}
        aucs = {C: fold_aucs(choice_folds, ps) for C, ps in tried.items()}
        C = max(grid, key=lambda c: aucs[c].mean())
        arm = choice.Arm("logistic_regression", "raw", {"C": str(C)}, tried[C], aucs[C], 0.0)
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
        shown = "—" if len(grid) == 1 else f"{C:g}" if isinstance(C, float) else str(C)
        rows.append([name, shown, f"{aucs[C].mean():.4f}",
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
    parser.add_argument(
        "--variant", action="append", default=[], help="transfer: only variants whose name contains this (repeatable)"
    )
    parser.add_argument("--no-append", action="store_true", help="print only (a trial run)")
    parser.add_argument("--repeats", type=int, default=2000, help="timed calls per cell (batch cells: a tenth)")
    args = parser.parse_args()
    if args.only != "latency":
        publish("Inputs that transfer (`bench/inputs.py`)", transfer(args.variant), args.no_append)
    if args.only != "transfer":
        publish("Relative churn at serving time (`bench/inputs.py`)", latency(args.repeats), args.no_append)


if __name__ == "__main__":
    main()
