"""Relative churn: the change-size metrics normalised by the size of what they change (Kamei et al. 2013).

Added lines mean more in a small file than in a large one, and the cumulative metrics (`lt`, `nuc`) grow with
a project's age, so trees that split on raw values extrapolate poorly to the next period. Kamei et al. (TSE
2013) normalise LA and LD by LT and LT and NUC by NF; churn per file, (LA + LD) / NF, completes the set. The
ratios are appended to the 15 metrics inside the model, so the ONNX input (and the service's payload) stays
the 15 metrics. A rolling-origin backtest (`bench/choice.py`) measured what they add.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from app.contract import FEATURES

_AT = {name: i for i, name in enumerate(FEATURES)}
# (numerator columns, summed; denominator column): one appended ratio each, in this order.
RATIOS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("la",), "lt"),
    (("ld",), "lt"),
    (("lt",), "nf"),
    (("nuc",), "nf"),
    (("la", "ld"), "nf"),
)
RATIO_NAMES = tuple("+".join(top) + "/" + bottom for top, bottom in RATIOS)
# A file created by the commit has lt = 0 and a commit may touch no file: a floor of one keeps the ratio finite
# and equal to the numerator there, which is what "relative to nothing" should mean.
FLOOR = 1.0


class RelativeChurn(TransformerMixin, BaseEstimator):
    """The 15 metrics [N, 15] → the metrics followed by the relative churn ratios [N, 15 + len(RATIOS)].

    Computed in float32, the precision of the ONNX input: IEEE division is correctly rounded, so the ratios
    equal onnxruntime's bit for bit and a tree splits on the same side in both.
    """

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> RelativeChurn:
        """Stateless: checks the width only."""
        width = np.asarray(X).shape[1]
        if width != len(FEATURES):
            raise ValueError(f"relative churn needs the {len(FEATURES)} metrics, got {width} columns")
        self.n_features_in_ = width
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Append the ratios; float64 output of float32 values."""
        x = np.asarray(X, dtype=np.float32)
        columns: list[np.ndarray] = [x]
        for top, bottom in RATIOS:
            numerator = x[:, _AT[top[0]]]
            for name in top[1:]:
                numerator = numerator + x[:, _AT[name]]
            columns.append((numerator / np.maximum(x[:, _AT[bottom]], np.float32(FLOOR)))[:, None])
        return np.hstack(columns).astype(np.float64)
