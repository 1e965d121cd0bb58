"""onnxruntime's call for the published logistic regression: the Platt map appended to the graph vs folded into it.

The same calibrated model (log1p metrics, standardised, class-weighted logistic regression, Platt map fitted on a
later period of the pooled shared data) exported twice: with the map appended as 12 nodes after skl2onnx's
graph (how every model was exported before) and with the map and the scaler folded into the linear classifier's
coefficients (how training/export.py exports a logistic regression now). Both sessions are built as the service
builds them (one thread, sequential, all graph optimisations) and called alternately, one row as `/predict` does
and 1,000 rows as a batch does; the table has the median per call over the rounds and each graph's largest
difference from scikit-learn's probabilities on every shared commit.

    .venv/bin/python -m bench.model_call [--rounds 7] [--calls 20000] [--no-append]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from app.contract import FEATURES, INPUT_NAME, PROBABILITY_OUTPUT
from app.predictor import session_options
from bench.machine import publish, table
from training import calibration, data, export, model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "commits"


def calibrated_model() -> tuple[calibration.Calibrated, np.ndarray]:
    """The recipe's logistic regression fitted on the older 70 % of the shared commits, its Platt map on the next
    15 %; and every commit's metrics."""
    frame, _ = data.drop_immature(data.load([DATA]).frame.sort_values("author_date"), 90)
    X, y = data.features(frame), frame["buggy"].to_numpy()
    fit, calibrate = int(0.7 * len(X)), int(0.85 * len(X))
    setting = model.settings("logistic_regression", budget=1, seed=0)[0]
    candidate = model.fixed("logistic_regression", {**setting, "features": "raw"}, X[:fit], y[:fit], seed=0)
    platt = calibration.fit(y[fit:calibrate], model.predict(candidate.estimator, X[fit:calibrate]))
    return calibration.Calibrated(candidate.estimator, platt), X


def per_call_us(session: ort.InferenceSession, rows: np.ndarray, calls: int) -> float:
    """Mean wall time of one `run` on `rows`, µs."""
    feed, options = {INPUT_NAME: rows}, ort.RunOptions()
    started = time.perf_counter()
    for _ in range(calls):
        session.run([PROBABILITY_OUTPUT], feed, options)
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20_000, help="one-row calls per round (1,000-row: a 50th)")
    parser.add_argument("--no-append", action="store_true", help="print only (a trial run)")
    args = parser.parse_args()
    calibrated, X = calibrated_model()
    graphs = {
        "Platt map appended (before)": export._append_platt(export._convert(calibrated.base, len(FEATURES)),
                                                            calibrated.platt),
        "Platt map and scaler folded (exported now)": export.to_onnx(calibrated, len(FEATURES)),
    }  # fmt: skip
    sessions = {name: ort.InferenceSession(blob, session_options(1, 1), providers=["CPUExecutionProvider"])
                for name, blob in graphs.items()}  # fmt: skip
    one, batch = X[:1].astype(np.float32), X[:1000].astype(np.float32)
    timings: dict[str, list[tuple[float, float]]] = {name: [] for name in graphs}
    for _ in range(args.rounds):
        for name, session in sessions.items():
            timings[name].append((per_call_us(session, one, args.calls), per_call_us(session, batch, args.calls // 50)))
    expected = model.predict(calibrated, X)
    rows = []
    for name, blob in graphs.items():
        difference = float(np.max(np.abs(export.onnx_probabilities(blob, X) - expected)))
        single = statistics.median(t[0] for t in timings[name])
        thousand = statistics.median(t[1] for t in timings[name])
        nodes = len(onnx.load_from_string(blob).graph.node)
        rows.append([name, nodes, f"{single:.1f}", f"{thousand:.0f}", f"{difference:.1e}"])
    before, after = (statistics.median(t[0] for t in timings[name]) for name in graphs)
    body = table(["graph", "nodes", "µs per call, 1 row", "µs per call, 1,000 rows", "max |Δp| vs scikit-learn"],
                 rows)  # fmt: skip
    body += (f"\n\n{len(X):,} shared commits; median of {args.rounds} alternating rounds of {args.calls:,} one-row "
             f"and {args.calls // 50:,} 1,000-row calls (onnxruntime {ort.__version__}, one thread). One row: "
             f"folded / appended = {after / before:.2f}.")  # fmt: skip
    publish("onnxruntime call of the published model (`bench/model_call.py`)", body, args.no_append)


if __name__ == "__main__":
    main()
