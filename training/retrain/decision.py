"""Continuous training: gather the facts, evaluate the triggers, train a challenger, bless it or not, deploy.

Every run ends in exactly one audit record — also "no trigger fired", "another trainer holds the lock" and
"refused by a gate" — written to the monitoring database (`retrain_audit`) and returned for `--json`.
The record is built here only, from the typed results of the steps (`facts`, `triggers`, `challenger`,
`bless`, `deploy`).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from app.contract import MODEL_FILE
from app.repository import ModelRepository
from training import data, export
from training.retrain import bless, challenger, deploy, triggers
from training.retrain.facts import Facts, gather
from training.retrain.lock import LockBusy, trainer_lock
from training.retrain.policy import RetrainPolicy

Progress = Callable[[str], None]
# What a successful deployment of a blessed challenger is recorded as, by deploy mode.
DEPLOYED_ACTIONS = {"direct": "promoted", "shadow": "shadowed", "none": "blessed"}


def run(policy: RetrainPolicy, progress: Progress) -> dict[str, Any]:
    """Decide (and unless dry-run: train, compare, deploy); return the audit record, also stored in the DB."""
    now = policy.now if policy.now is not None else time.time()
    store = _open_store(policy)
    record: dict[str, Any] = {
        "time": now, "time_iso": datetime.fromtimestamp(now, UTC).isoformat(), "dry_run": policy.dry_run,
        "host": socket.gethostname(), "pid": os.getpid(),
        "plan": {"window": policy.window, "level": policy.level, "deploy": policy.deploy},
    }  # fmt: skip
    try:
        if policy.dry_run:
            _decide_and_act(policy, store, now, record, progress)
        else:
            with trainer_lock(policy.models_dir, store.engine if store else None):
                _decide_and_act(policy, store, now, record, progress)
    except LockBusy as exc:
        record.update(action="skipped", reason=f"another trainer is running: {exc}", fired=[], triggers=[])
    except Exception as exc:
        # An unexpected failure is still a decision the operator must be able to find.
        record.update(action="error", reason=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if store is not None:
            _save(store, record, policy)
            store.close()
    return record


def _open_store(policy: RetrainPolicy) -> Any:
    if policy.database_url is None:
        return None
    from app.monitoring.store import Store

    return Store.open(policy.database_url, schema=policy.database_schema)


def _save(store: Any, record: dict[str, Any], policy: RetrainPolicy) -> None:
    from app.monitoring import retrain_log

    record["audit_id"] = retrain_log.write_audit(store.engine, record)
    # Requests are answered by any real decision; a dry run or a skipped run leaves them for the next one.
    if not policy.dry_run and record["action"] != "skipped":
        retrain_log.consume_requests(store.engine, record.get("requests", []), record["audit_id"])


def decide(policy: RetrainPolicy, facts: Facts, now: float) -> list[triggers.Trigger]:
    """Every trigger, evaluated (fired or not), in a fixed order."""
    created = facts.manifest.created_at if facts.manifest else None
    y, p = np.zeros(0, dtype=np.int64), np.zeros(0)
    if facts.production is not None and facts.model_bytes is not None and len(facts.production):
        newest = facts.production.tail(policy.performance_rows)
        y = newest["buggy"].to_numpy()
        p = export.onnx_probabilities(facts.model_bytes, data.features(newest))
    test_auc = facts.manifest.test_metrics.roc_auc if facts.manifest else None
    share, at = None, None
    drift_note = ""
    if facts.drift is not None:
        # A result computed against an earlier champion's reference says nothing about the current one.
        if facts.drift.get("model_version") == facts.champion:
            share, at = float(facts.drift["drift_share"]), float(facts.drift["stored_at"])
        else:
            drift_note = f" (newest result is for version {facts.drift.get('model_version')})"
    drift = triggers.drift(share, at, now, policy.drift_threshold, policy.drift_max_age_days)
    if drift_note:
        drift = triggers.Trigger(drift.name, False, None, drift.threshold, drift.rule, drift.detail + drift_note)
    return [
        triggers.interval(created, now, policy.max_age_days),
        triggers.performance(
            y,
            p,
            floor=policy.performance_floor,
            champion_test_auc=test_auc,
            max_drop=policy.max_auc_drop,
            min_rows=policy.min_labelled_rows,
        ),
        drift,
        triggers.on_demand(policy.force, facts.request_ids),
    ]


def _decide_and_act(policy: RetrainPolicy, store: Any, now: float, record: dict[str, Any], progress: Progress) -> None:
    facts = gather(policy, store, now)
    evaluated = decide(policy, facts, now)
    fired = [t.name for t in evaluated if t.fired]
    record.update(
        triggers=[t.as_json() for t in evaluated], fired=fired, champion_version=facts.champion,
        challenger_version=None, deployed=None, requests=facts.request_ids,
    )  # fmt: skip
    for t in evaluated:
        state = "FIRED" if t.fired else "quiet"
        progress(f"trigger {t.name}: {state} (value {t.value}, threshold {t.threshold}; {t.detail})")
    if not fired:
        record.update(action="none", reason="no trigger fired")
        return
    if policy.dry_run:
        record.update(action="would_retrain", reason=f"fired: {', '.join(fired)}; dry run, nothing trained")
        return
    _retrain(policy, facts, store, record, progress)


def _retrain(policy: RetrainPolicy, facts: Facts, store: Any, record: dict[str, Any], progress: Progress) -> None:
    """Train a challenger, bless it or not, deploy it; each step's result goes into the record as it happens."""
    challenge = challenger.train(policy, facts, store, progress)
    record.update(challenge.as_record())
    if challenge.published is None:
        record.update(action="refused", reason=challenge.refused)
        return
    version = challenge.published.version
    record["challenger_version"] = version
    challenger_bytes = (policy.models_dir / str(version) / MODEL_FILE).read_bytes()
    verdict = bless.compare(challenge.published.recent, facts.model_bytes, challenger_bytes, policy.min_delta)
    record["comparison"] = verdict.as_json()
    progress(f"challenger {version}: {verdict.why}")
    record["mlflow_run_id"] = _track(policy, challenge, record, verdict.blessed)
    if not verdict.blessed:
        record.update(action="not_promoted", reason=f"published unpromoted: {verdict.why}")
        return
    token = policy.token.get_secret_value() if policy.token else None
    try:
        deployed = deploy.deploy(policy.models_dir, version, policy.deploy, policy.service_url, token)
    except deploy.DeployError as exc:
        record.update(action="deploy_failed", reason=str(exc), deployed=policy.deploy)
        return
    record.update(deployment=deployed.as_json(), deployed=policy.deploy)
    record.update(action=DEPLOYED_ACTIONS[policy.deploy], reason=verdict.why)
    record["champion_after"] = ModelRepository(policy.models_dir).pointer()


def _track(policy: RetrainPolicy, challenge: challenger.Challenge, record: dict[str, Any], blessed: bool) -> Any:
    """Log the run to MLflow tagged with its trigger(s); a tracking failure is noted, never fatal."""
    if not policy.mlflow_uri or challenge.published is None or challenge.window is None:
        return None
    from training.tracking import TrackingError, log_run

    tags = {
        "commitrisk.trigger": ",".join(record.get("fired", [])) or "none",
        "commitrisk.retrain.window": challenge.window.strategy,
        "commitrisk.retrain.level": policy.level,
        "commitrisk.retrain.blessed": str(blessed).lower(),
    }
    try:
        return log_run(policy.mlflow_uri, challenge.published.config, challenge.published.outcome, tags)
    except TrackingError as exc:
        record["mlflow_error"] = str(exc)
        return None
