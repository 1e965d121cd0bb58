"""What one retrain decision is based on, fetched once: the champion, matured production labels, drift, requests.

Everything later (triggers, window, challenger, blessing) reads these facts and fetches nothing itself, so a
decision is reproducible from its audit record.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from app.contract import ModelManifest
from training import assessment
from training.retrain import window
from training.retrain.policy import RetrainPolicy


@dataclass(frozen=True)
class Facts:
    """The champion (None before the first model), mature labelled production rows, newest drift, requests."""

    champion: int | None = None
    manifest: ModelManifest | None = None
    model_bytes: bytes | None = None
    production: pd.DataFrame | None = None  # mature labelled production rows, time-ordered
    production_immature: int = 0
    drift: dict[str, Any] | None = None  # the newest successful drift report plus its `stored_at`
    request_ids: list[int] = field(default_factory=list)


def gather(policy: RetrainPolicy, store: Any, now: float) -> Facts:
    """Champion, mature labelled production rows, newest drift result and pending requests.

    `store` is an open `app.monitoring.store.Store` or None (no monitoring database: champion facts only).
    """
    champion, manifest, model_bytes = None, None, None
    # No champion yet: the interval trigger fires and the first model is trained.
    with contextlib.suppress(assessment.ScoringError):
        champion, manifest, model_bytes = assessment.load_version(policy.models_dir, None)
    if store is None:
        return Facts(champion, manifest, model_bytes)
    from app.monitoring import retrain_log

    logged, buggy = store.labelled_window()
    labelled = window.production_frame(logged.features, logged.time, logged.commit_id, buggy)
    production, immature = window.mature(labelled, now, policy.label_delay_days)
    newest = store.latest_drift_report()
    drift = None
    if newest is not None and newest.status == "ok":
        drift = {**newest.report, "stored_at": newest.computed_at}
    return Facts(
        champion=champion,
        manifest=manifest,
        model_bytes=model_bytes,
        production=production,
        production_immature=immature,
        drift=drift,
        request_ids=[r.id for r in retrain_log.pending_requests(store.engine)],
    )
