"""Training benchmark: wall time + peak RSS of `commitrisk train`, and the chronological-vs-random leakage gap.

    .venv/bin/python -m bench.train [--rows 1000000] [--skip-large]

1. `train` on the four shared datasets pooled (default budget), and on a 1,000,000-row resample of them.
2. For every candidate family: chronological test ROC AUC next to its random-split ROC AUC (the leakage gap),
   and the published model's chronological test AUC next to the reference random forest's on the same split.
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

import numpy as np
import pandas as pd

from app.contract import FEATURES
from bench.machine import append, table
from training import choice, data, evaluate, export, model
from training.config import ALL_FAMILIES, DEFAULT_FEATURES, MEMBER_FAMILIES, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "commits"


def timed_train(args: list[str]) -> tuple[float, float, dict[str, object]]:
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


REFERENCE = "reference random forest (raw metrics)"


def leakage_gap(budget: int) -> tuple[list[list[object]], dict[str, np.ndarray], np.ndarray]:
    """Per candidate: chronological vs random-split test ROC AUC, same search budget and pipeline steps.

    The candidates use `commitrisk train`'s default inputs; the last row is the reference approach, a random
    forest searched on the 15 raw metrics. Also returns every candidate's chronological test probabilities
    and the test labels, for the paired comparison with the reference.
    """
    mature, _ = data.drop_immature(data.load([SHARED]).frame, 90)
    splits = {
        "chronological": data.split_chronological(mature, 0.2, 0.2),
        "random": data.split_random(mature, 0.2, 0.2, seed=42),
    }
    aucs: dict[str, dict[str, float]] = {name: {} for name in (*ALL_FAMILIES, REFERENCE)}
    chronological: dict[str, np.ndarray] = {}
    for kind, split in splits.items():
        X, y = data.features(split.train), split.train["buggy"].to_numpy()
        # The ensemble averages the members searched here, as `commitrisk train` does (no second search).
        members = [model.search(f, X, y, budget=budget, folds=3, seed=42, n_jobs=-1) for f in MEMBER_FAMILIES]
        reference = model.search("random_forest", X, y, budget=budget, folds=3, seed=42, n_jobs=-1, features="raw")
        fit = pd.concat([split.train, split.validation])
        named = [(c.family, c) for c in [*members, model.combine(members)]] + [(REFERENCE, reference)]
        for name, candidate in named:
            final = model.refit(candidate, data.features(fit), fit["buggy"].to_numpy())
            blob = export.to_onnx(final, len(FEATURES))
            p = export.onnx_probabilities(blob, data.features(split.test))
            aucs[name][kind] = evaluate.roc_auc(split.test["buggy"].to_numpy(), p) or 0.0
            if kind == "chronological":
                chronological[name] = p
    rows: list[list[object]] = []
    for name, found in aucs.items():
        gap = found["random"] - found["chronological"]
        rows.append([name, f"{found['chronological']:.3f}", f"{found['random']:.3f}", f"{gap:+.3f}"])
    return rows, chronological, splits["chronological"].test["buggy"].to_numpy()


def versus_reference(y: np.ndarray, published: np.ndarray, reference: np.ndarray) -> str:
    """The published − reference test ROC AUC difference with its paired DeLong SE and 95% interval."""
    aucs, cov = choice.delong(y, [published, reference])
    diff = float(aucs[0] - aucs[1])
    se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0)))
    low, high = diff - 1.96 * se, diff + 1.96 * se
    return f"difference {diff:+.4f}, paired DeLong SE {se:.4f}, 95% interval [{low:+.4f}, {high:+.4f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large resample")
    parser.add_argument("--skip-large", action="store_true", help="skip the large resample")
    args = parser.parse_args()
    budget = TrainConfig().budget
    timing: list[list[object]] = []
    with tempfile.TemporaryDirectory() as scratch:
        wall, rss, pooled = timed_train(["--data", str(SHARED), "--models", f"{scratch}/pooled"])
        timing.append(["pooled shared data", pooled["rows_loaded"], f"{wall:.1f}", f"{rss:.0f}",
                       pooled["model_type"], f"{pooled['test_metrics']['roc_auc']:.3f}"])  # fmt: skip
        if not args.skip_large:
            big = Path(scratch) / "resample.csv"
            resample(args.rows, big)
            wall, rss, large = timed_train(["--data", str(big), "--models", f"{scratch}/large"])
            timing.append([f"{args.rows:,}-row resample", large["rows_loaded"], f"{wall:.1f}", f"{rss:.0f}",
                           large["model_type"], f"{large['test_metrics']['roc_auc']:.3f}"])  # fmt: skip
    candidates = {c["name"]: c for c in pooled["candidates"]}  # type: ignore[union-attr]
    gap, chrono_p, chrono_y = leakage_gap(budget)
    for row in gap:
        found = candidates.get(str(row[0]))
        row.insert(1, "-" if found is None else f"{found['validation_roc_auc']:.3f}")
    reference = next(r for r in gap if r[0] == REFERENCE)
    body = "\n\n".join([
        f"`commitrisk train`, default budget ({budget} candidates × 3 time-ordered folds per family), 2 search jobs.",
        table(["data", "rows", "wall s", "peak RSS MiB", "chosen", "test ROC AUC"], timing),
        "Leakage gap — test ROC AUC of each candidate on the chronological split vs a stratified random split "
        "(same budget; refit on train + validation; scored through ONNX), next to its validation ROC AUC in the "
        f"pooled run (the only figure the choice sees). Candidates use the default inputs ({DEFAULT_FEATURES}); "
        "the reference forest is the reference approach on the raw metrics:",
        table(["candidate", "validation", "chronological test", "random test", "gap (random − chrono)"], gap),
        f"Published model (chosen on validation: **{pooled['model_type']}**, validation ROC AUC "
        f"{candidates[str(pooled['model_type'])]['validation_roc_auc']:.3f}) chronological test ROC AUC "
        f"**{pooled['test_metrics']['roc_auc']:.3f}** vs the reference random forest's **{reference[2]}** on the "
        "same split (the pooled run's candidate choice and this table's searches use the same seed and budget): "
        f"{versus_reference(chrono_y, chrono_p[str(pooled['model_type'])], chrono_p[REFERENCE])}.",
    ])  # fmt: skip
    append("Training (`bench/train.py`)", body)


if __name__ == "__main__":
    main()
