"""Retrain triggers: interval, performance, data drift, on demand — each a value against a threshold.

Pure functions on already-fetched facts (the champion's manifest, labelled production rows, the newest
drift row, pending requests), so every decision is reproducible from its audit record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np

from training import evaluate

DAY = 86_400.0


@dataclass(frozen=True)
class Trigger:
    """One evaluated trigger: `fired` is `value` compared with `threshold` as `rule` says."""

    name: str
    fired: bool
    value: float | None
    threshold: float | None
    rule: str
    detail: str

    def as_json(self) -> dict[str, Any]:
        """Plain JSON for the audit record."""
        return asdict(self)


def interval(champion_created_at: datetime | None, now: float, max_age_days: float | None) -> Trigger:
    """Fires when the champion is older than `max_age_days` (or there is no champion at all)."""
    if max_age_days is None:
        return Trigger("interval", False, None, None, "age_days > max_age_days", "disabled")
    if champion_created_at is None:
        return Trigger("interval", True, None, max_age_days, "age_days > max_age_days", "no champion yet")
    age = (now - champion_created_at.timestamp()) / DAY
    return Trigger(
        "interval", age > max_age_days, round(age, 3), max_age_days, "age_days > max_age_days",
        f"champion created {champion_created_at.isoformat()}",
    )  # fmt: skip


def performance(
    y: np.ndarray,
    probability: np.ndarray,
    *,
    floor: float | None,
    champion_test_auc: float | None,
    max_drop: float | None,
    min_rows: int,
) -> Trigger:
    """Fires when the labelled ROC AUC is < `floor`, or below the champion's own test AUC by > `max_drop`."""
    rule = "roc_auc < floor or test_roc_auc - roc_auc > max_drop"
    if floor is None and max_drop is None:
        return Trigger("performance", False, None, None, rule, "disabled")
    rows, buggy = len(y), int(np.sum(y))
    if rows < min_rows or buggy in (0, rows):
        return Trigger(
            "performance", False, None, floor, rule,
            f"{rows} mature labelled rows ({buggy} buggy): need {min_rows} with both classes",
        )  # fmt: skip
    auc = evaluate.roc_auc(np.asarray(y, dtype=np.int64), probability)
    assert auc is not None  # both classes present
    below_floor = floor is not None and auc < floor
    drop = None if champion_test_auc is None else champion_test_auc - auc
    dropped = max_drop is not None and drop is not None and drop > max_drop
    # The audit shows the binding threshold: the floor, or the champion's test AUC minus the allowed drop.
    limits = [] if floor is None else [floor]
    if champion_test_auc is not None and max_drop is not None:
        limits.append(champion_test_auc - max_drop)
    detail = f"{rows} rows, {buggy} buggy; champion test ROC AUC {champion_test_auc}"
    if drop is not None:
        detail += f", drop {drop:.3f} (allowed {max_drop})"
    threshold = round(max(limits), 4) if limits else None
    return Trigger("performance", below_floor or dropped, round(auc, 4), threshold, rule, detail)


def drift(
    share: float | None, computed_at: float | None, now: float, threshold: float | None, max_age_days: float
) -> Trigger:
    """Fires when the newest drift share is ≥ `threshold`; results older than `max_age_days` are stale."""
    rule = "drift_share >= threshold"
    if threshold is None:
        return Trigger("drift", False, None, None, rule, "disabled")
    if share is None or computed_at is None:
        return Trigger("drift", False, None, threshold, rule, "no successful drift result in the database")
    age = (now - computed_at) / DAY
    if age > max_age_days:
        return Trigger("drift", False, share, threshold, rule, f"newest result is stale ({age:.1f} days old)")
    return Trigger(
        "drift", share >= threshold, round(share, 4), threshold, rule, f"computed {max(age, 0.0):.2f} days before"
    )


def on_demand(force: bool, request_ids: list[int]) -> Trigger:
    """Fires on `--force` or on any pending `POST /retrain` request."""
    if force:
        detail = "--force"
    elif request_ids:
        detail = f"pending requests {request_ids}"
    else:
        detail = "no request"
    fired = force or bool(request_ids)
    return Trigger("on_demand", fired, float(len(request_ids)), 1.0, "force or requests >= 1", detail)
