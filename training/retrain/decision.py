"""Continuous training: evaluate the triggers, pick the data, train a challenger, bless it or not, deploy.

Every run ends in exactly one audit record — also "no trigger fired", "another trainer holds the lock" and
"refused by a gate" — written to the monitoring database (`retrain_audit`) and returned for `--json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from app.contract import ModelManifest
from training import assessment, data, export
from training.retrain import triggers, window
from training.retrain.lock import LockBusy, trainer_lock
from training.retrain.policy import RetrainPolicy

Progress = Callable[[str], None]


@dataclass
class Facts:
    """What one decision is based on, fetched once."""

    champion: int | None = None
    manifest: ModelManifest | None = None
    model_bytes: bytes | None = None
    production: pd.DataFrame | None = None  # mature labelled production rows
    production_immature: int = 0
    drift: dict[str, Any] | None = None
    request_ids: list[int] = field(default_factory=list)


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


def gather(policy: RetrainPolicy, store: Any, now: float) -> Facts:
    """Champion, mature labelled production rows, newest drift result and pending requests."""
    facts = Facts()
    # No champion yet: the interval trigger fires and the first model is trained.
    with contextlib.suppress(assessment.ScoringError):
        facts.champion, facts.manifest, facts.model_bytes = assessment.load_version(policy.models_dir, None)
    if store is None:
        return facts
    from app.monitoring import retrain_log

    logged, buggy = store.labelled_window()
    labelled = window.production_frame(logged.features, logged.time, logged.commit_id, buggy)
    facts.production, facts.production_immature = window.mature(labelled, now, policy.label_delay_days)
    newest = store.latest_drift_report()
    if newest is not None and newest.status == "ok":
        facts.drift = {**newest.report, "stored_at": newest.computed_at}
    facts.request_ids = [r.id for r in retrain_log.pending_requests(store.engine)]
    return facts


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
    from training.retrain.challenger import train_and_judge

    train_and_judge(policy, facts, store, record, progress)


EXIT_CODES = {"refused": 3, "deploy_failed": 1}


def describe(record: dict[str, Any]) -> str:
    """Human-readable lines of one audit record (the `--json` output is the record itself)."""
    lines = [f"{record['time_iso']}  action: {record['action']} — {record['reason']}"]
    for t in record.get("triggers", []):
        mark = "FIRED" if t["fired"] else "quiet"
        lines.append(f"  {t['name']:<12} {mark:<6} value {t['value']} threshold {t['threshold']} ({t['detail']})")
    for key in ("data", "window", "selection", "comparison", "deployment"):
        if key in record:
            lines.append(f"  {key}: {json.dumps(record[key], default=str)}")
    versions = f"champion {record.get('champion_version')}, challenger {record.get('challenger_version')}"
    lines.append(f"  versions: {versions}; deployed: {record.get('deployed')}; audit id {record.get('audit_id')}")
    return "\n".join(lines)


def command(policy: RetrainPolicy, json_output: bool, every: float | None, jitter: float = 0.1) -> int:
    """`commitrisk retrain`: one decision (exit code by action), or the `--every` loop until SIGTERM (0)."""
    import sys

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def once() -> dict[str, Any]:
        record = run(policy, log if not json_output else (lambda _m: None))
        print(json.dumps(record, default=str) if json_output else describe(record), flush=True)
        return record

    if every is None:
        return EXIT_CODES.get(once()["action"], 0)
    import threading

    from training.retrain.schedule import install_stop, run_every

    stop = threading.Event()
    install_stop(stop, log)

    def tick() -> None:
        once()

    run_every(every, tick, stop, jitter=jitter, log=log)
    return 0
