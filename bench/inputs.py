"""What the relative churn step costs at serving time: onnxruntime latency of each family, raw vs relative churn.

    .venv/bin/python -m bench.inputs [--repeats 2000]

Each family is fitted once per feature set on the pooled shared data with its default hyperparameters (the same
seed), exported as `commitrisk train` exports it but without the Platt map (it adds the same nodes to both) and
timed in one process with one intra-op thread, as the service runs it: median time of one row and of a
1,000-row batch, and the ratio relative churn / raw measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort

from app.contract import FEATURES, INPUT_NAME, PROBABILITY_OUTPUT
from bench.machine import append, table
from bench.train import SHARED
from training import data, export, model
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2000, help="timed calls per cell (batch cells: a tenth)")
    args = parser.parse_args()
    mature, _ = data.drop_immature(data.load([SHARED]).frame, 90)
    X, y = data.features(mature), mature["buggy"].to_numpy()
    one = np.ascontiguousarray(X[:1], dtype=np.float32)
    batch = np.ascontiguousarray(X[:1000], dtype=np.float32)
    rows: list[list[object]] = []
    for family in (*MEMBER_FAMILIES, "ensemble"):
        sessions = {}
        for features in FEATURE_SETS:
            fitted = model.fixed(family, {"features": features}, X, y, seed=42)  # type: ignore[arg-type]
            sessions[features] = session(export.to_onnx(fitted.estimator, len(FEATURES)))
        single = {f: median_us(s, one, args.repeats) for f, s in sessions.items()}
        many = {f: median_us(s, batch, max(args.repeats // 10, 20)) for f, s in sessions.items()}
        rows.append([
            family, f"{single['raw']:.1f}", f"{single['relative_churn']:.1f}",
            f"{single['relative_churn'] / single['raw']:.2f}", f"{many['raw']:.0f}", f"{many['relative_churn']:.0f}",
            f"{many['relative_churn'] / many['raw']:.2f}",
        ])  # fmt: skip
    body = "\n\n".join([
        "onnxruntime, one intra-op thread, default hyperparameters fitted on the pooled shared data; median of "
        f"{args.repeats} calls (1 row) and {max(args.repeats // 10, 20)} calls (1,000 rows), both inputs timed in "
        "the same process:",
        table(["family", "1 row raw µs", "1 row churn µs", "ratio", "1,000 rows raw µs", "1,000 rows churn µs",
               "ratio"], rows),
    ])  # fmt: skip
    print(body)
    append("Relative churn at serving time (`bench/inputs.py`)", body)


if __name__ == "__main__":
    main()
