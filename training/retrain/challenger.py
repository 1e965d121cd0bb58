"""The challenger: pool → hold out the recent period → window → train → compare with the champion → deploy.

Champion and challenger are scored on the same held-out recent period, which the challenger never trained
on; the challenger is *blessed* only when it passed the quality gates (it was published) and beats the
champion there by at least `min_delta` ROC AUC. An unblessed challenger stays published but unpromoted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from app.contract import FEATURES
from training import data, evaluate, export, pipeline, publish
from training.config import ALL_FAMILIES, ModelFamily, TrainConfig
from training.retrain import deploy, window
from training.retrain.policy import RetrainPolicy

if TYPE_CHECKING:
    from training.retrain.decision import Facts

Progress = Callable[[str], None]


def build_pool(policy: RetrainPolicy, facts: Facts) -> window.Pool:
    """Base datasets (cut per repository for maturity) plus mature production rows, de-duplicated."""
    base = None
    if policy.data:
        loaded = data.load(policy.data)
        mature, _ = data.drop_immature(loaded.frame, policy.label_delay_days)
        base = data.Dataset(mature, loaded.fingerprint, loaded.duplicates_dropped)
    production = facts.production if facts.production is not None else pd.DataFrame()
    if base is None and production.empty:
        raise data.DataError("no training data: pass --data and/or a database with matured feedback")
    if production.empty and base is not None:
        production = base.frame.iloc[:0]
    return window.build_pool(base, production, facts.production_immature)


def training_config(policy: RetrainPolicy, facts: Facts) -> tuple[TrainConfig, str]:
    """The pipeline configuration of the level (refit / search / select) and a note on what it means."""
    manifest = facts.manifest
    if manifest is None or policy.level == "select" or manifest.model_type not in ALL_FAMILIES:
        note = "select: every model family searched" + ("" if manifest else " (no champion to start from)")
        return _config(policy), note
    family = manifest.model_type
    if policy.level == "refit":
        fixed = _config(policy, families=(family,), fixed_params=dict(manifest.params))
        return fixed, f"refit: {family} with the champion's hyperparameters"
    return _config(policy, families=(family,)), f"search: {family} hyperparameters searched anew"


def _config(policy: RetrainPolicy, **level: Any) -> TrainConfig:
    # promote=False: the blessing below decides; the pipeline only publishes.
    return TrainConfig(
        models_dir=policy.models_dir, budget=policy.budget, seed=policy.seed, n_jobs=policy.n_jobs,
        promote=False, gates=policy.gates, label_delay_days=policy.label_delay_days, **level,
    )  # fmt: skip


def choose_window(
    policy: RetrainPolicy, facts: Facts, older: pd.DataFrame, recent: pd.DataFrame, store: Any
) -> tuple[window.WindowChoice, dict[str, Any] | None]:
    """The rows the challenger trains on (with a `weight` column for data selection) and selection facts."""
    if policy.window == "fixed":
        return window.fixed(older, policy.window_days, policy.window_rows), None
    if policy.window == "dynamic":
        family: ModelFamily = "logistic_regression"
        params = None
        if facts.manifest is not None and facts.manifest.model_type in ALL_FAMILIES:
            family, params = facts.manifest.model_type, dict(facts.manifest.params)
        choice = window.dynamic(
            older,
            policy.candidate_days,
            family,
            params,
            recent_fraction=policy.recent_fraction,
            seed=policy.seed,
        )
        return choice, None
    from training.retrain.selection import importance_weights

    sample, source = _production_sample(policy, store, recent)
    chosen = window.fixed(older, policy.window_days, policy.window_rows).frame.copy()
    selection = importance_weights(data.features(chosen), sample, clip=policy.weight_clip, seed=policy.seed)
    chosen["weight"] = selection.weights
    summary = {**selection.as_json(), "production_source": source}
    return window.WindowChoice("selection", chosen, "rows weighted by similarity to production"), summary


def _production_sample(policy: RetrainPolicy, store: Any, recent: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Features of the newest logged predictions (labels not needed); else the held-out period's features."""
    if store is not None:
        logged = store.window(rows=policy.selection_rows)
        if logged.rows >= 30:
            matrix = np.column_stack([logged.features[n] for n in FEATURES]).astype(np.float32)
            return matrix, f"newest {logged.rows} logged predictions"
    return data.features(recent), f"features of the {len(recent)} held-out recent rows (no prediction log)"


def compare(recent: pd.DataFrame, champion: bytes | None, challenger: bytes, min_delta: float) -> dict[str, Any]:
    """ROC AUC of both on the recent period, the delta, and whether the challenger is blessed."""
    y = recent["buggy"].to_numpy()
    X = data.features(recent)
    result: dict[str, Any] = {
        "period_start": window.iso(recent["author_date"].min()),
        "period_end": window.iso(recent["author_date"].max()),
        "rows": len(recent), "buggy": int(y.sum()), "min_delta": min_delta,
    }  # fmt: skip
    challenger_auc = evaluate.roc_auc(y, export.onnx_probabilities(challenger, X))
    champion_auc = None if champion is None else evaluate.roc_auc(y, export.onnx_probabilities(champion, X))
    result.update(challenger_roc_auc=challenger_auc, champion_roc_auc=champion_auc)
    if challenger_auc is None:
        result.update(blessed=False, why="the recent period holds one class only: ROC AUC undefined")
    elif champion is None:
        result.update(blessed=True, why="no champion to beat")
    else:
        delta = challenger_auc - (champion_auc or 0.0)
        result["delta"] = round(delta, 4)
        ok = delta >= min_delta
        verb = "beats" if ok else "does not beat"
        why = f"challenger {challenger_auc:.4f} {verb} champion {champion_auc:.4f} by ≥ {min_delta}"
        why += f" (Δ {delta:+.4f})"
        result.update(blessed=ok, why=why)
    return result


def train_and_judge(
    policy: RetrainPolicy, facts: Facts, store: Any, record: dict[str, Any], progress: Progress
) -> None:
    """Train a challenger and fill `record` with the window, comparison, deployment and action."""
    try:
        pool = build_pool(policy, facts)
        older, recent = window.hold_out(pool.frame, policy.holdout_fraction)
        record["data"] = {
            "base_rows": pool.base_rows, "production_rows": pool.production_rows,
            "production_immature": pool.production_immature, "duplicates_dropped": pool.duplicates_dropped,
            "pool_rows": len(pool.frame), "holdout_rows": len(recent),
        }  # fmt: skip
        choice, selection = choose_window(policy, facts, older, recent, store)
        record["window"] = choice.as_json()
        if selection is not None:
            record["selection"] = selection
        config, level_note = training_config(policy, facts)
        record["level"] = level_note
        progress(f"window: {choice.description} ({len(choice.frame)} rows); {level_note}")
        outcome = pipeline.run(config, progress, dataset=pool.dataset(choice.frame))
    except (data.DataError, pipeline.GateRefused, export.ExportError, ValueError) as exc:
        record.update(action="refused", reason=f"no challenger: {exc}")
        return
    version = outcome.manifest.version
    record["challenger_version"] = version
    challenger_bytes = (policy.models_dir / str(version) / "model.onnx").read_bytes()
    verdict = compare(recent, facts.model_bytes, challenger_bytes, policy.min_delta)
    record["comparison"] = verdict
    progress(f"challenger {version}: {verdict['why']}")
    record["mlflow_run_id"] = _track(policy, config, outcome, record, verdict["blessed"])
    if not verdict["blessed"]:
        record.update(action="not_promoted", reason=f"published unpromoted: {verdict['why']}")
        return
    token = policy.token.get_secret_value() if policy.token else None
    try:
        deployed = deploy.deploy(policy.models_dir, version, policy.deploy, policy.service_url, token)
    except deploy.DeployError as exc:
        record.update(action="deploy_failed", reason=str(exc), deployed=policy.deploy)
        return
    record.update(deployment=deployed.as_json(), deployed=policy.deploy)
    actions = {"direct": "promoted", "shadow": "shadowed", "none": "blessed"}
    record.update(action=actions[policy.deploy], reason=verdict["why"])
    record["champion_after"] = publish.read_pointer(policy.models_dir)


def _track(policy: RetrainPolicy, config: TrainConfig, outcome: Any, record: dict[str, Any], blessed: bool) -> Any:
    """Log the run to MLflow tagged with its trigger(s); a tracking failure is noted, never fatal."""
    if not policy.mlflow_uri:
        return None
    from training.tracking import TrackingError, log_run

    tags = {
        "commitrisk.trigger": ",".join(record.get("fired", [])) or "none",
        "commitrisk.retrain.window": record["window"]["strategy"],
        "commitrisk.retrain.level": policy.level,
        "commitrisk.retrain.blessed": str(blessed).lower(),
    }
    try:
        return log_run(policy.mlflow_uri, config, outcome, tags)
    except TrackingError as exc:
        record["mlflow_error"] = str(exc)
        return None
