"""The blessing: champion and challenger scored on the same held-out recent period; the challenger must win.

The recent period is the newest part of the pool, which the challenger never trained on. The challenger is
blessed only when it beats the champion there by at least `min_delta` ROC AUC (or there is no champion);
an unblessed challenger stays published but unpromoted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from training import data, evaluate, export
from training.retrain import window


@dataclass(frozen=True)
class Verdict:
    """Both ROC AUCs on the recent period, their difference and whether the challenger is blessed (and why)."""

    period_start: str
    period_end: str
    rows: int
    buggy: int
    min_delta: float
    challenger_roc_auc: float | None
    champion_roc_auc: float | None
    blessed: bool
    why: str
    delta: float | None = None  # challenger − champion, rounded; None without a champion or a defined AUC

    def as_json(self) -> dict[str, Any]:
        """The audit record's `comparison` (no `delta` key when there is no difference to report)."""
        out: dict[str, Any] = {
            "period_start": self.period_start, "period_end": self.period_end, "rows": self.rows,
            "buggy": self.buggy, "min_delta": self.min_delta, "challenger_roc_auc": self.challenger_roc_auc,
            "champion_roc_auc": self.champion_roc_auc,
        }  # fmt: skip
        if self.delta is not None:
            out["delta"] = self.delta
        return out | {"blessed": self.blessed, "why": self.why}


def compare(recent: pd.DataFrame, champion: bytes | None, challenger: bytes, min_delta: float) -> Verdict:
    """Score both ONNX models on `recent` and bless the challenger when it wins by ≥ `min_delta` ROC AUC."""
    y = recent["buggy"].to_numpy()
    X = data.features(recent)
    challenger_auc = evaluate.roc_auc(y, export.onnx_probabilities(challenger, X))
    champion_auc = None if champion is None else evaluate.roc_auc(y, export.onnx_probabilities(champion, X))
    delta: float | None = None
    if challenger_auc is None:
        blessed, why = False, "the recent period holds one class only: ROC AUC undefined"
    elif champion is None:
        blessed, why = True, "no champion to beat"
    else:
        difference = challenger_auc - (champion_auc or 0.0)
        blessed = difference >= min_delta
        verb = "beats" if blessed else "does not beat"
        why = f"challenger {challenger_auc:.4f} {verb} champion {champion_auc:.4f} by ≥ {min_delta}"
        why += f" (Δ {difference:+.4f})"
        delta = round(difference, 4)
    return Verdict(
        period_start=window.iso(recent["author_date"].min()),
        period_end=window.iso(recent["author_date"].max()),
        rows=len(recent),
        buggy=int(y.sum()),
        min_delta=min_delta,
        challenger_roc_auc=challenger_auc,
        champion_roc_auc=champion_auc,
        blessed=blessed,
        why=why,
        delta=delta,
    )
