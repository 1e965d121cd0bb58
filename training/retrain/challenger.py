"""The challenger: pool → hold out the recent period → window → train (published, never promoted here).

The newest part of the pool is held out: the challenger never trains on it, and `bless` compares champion and
challenger there. `train` returns what it did as a `Challenge`; the decision turns it into the audit record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from app.contract import FEATURES
from training import data, export, pipeline
from training.config import ALL_FAMILIES, ModelFamily, TrainConfig
from training.retrain import window
from training.retrain.facts import Facts
from training.retrain.policy import RetrainPolicy
from training.retrain.window import WindowChoice

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Published:
    """The challenger version the pipeline published (unpromoted) and the held-out period it is judged on."""

    version: int
    outcome: pipeline.TrainOutcome
    config: TrainConfig
    recent: pd.DataFrame


@dataclass(frozen=True)
class Challenge:
    """How far training a challenger got — pool, window, level — and its result: published, or refused (why)."""

    data: dict[str, int] | None = None
    window: WindowChoice | None = None
    selection: dict[str, Any] | None = None
    level: str | None = None
    published: Published | None = None
    refused: str | None = None

    def as_record(self) -> dict[str, Any]:
        """The audit record's `data`, `window`, `selection` and `level` entries, as far as training got."""
        entries = {
            "data": self.data,
            "window": None if self.window is None else self.window.as_json(),
            "selection": self.selection,
            "level": self.level,
        }
        return {key: value for key, value in entries.items() if value is not None}


def train(policy: RetrainPolicy, facts: Facts, store: Any, progress: Progress) -> Challenge:
    """Pool, hold out, choose the window and run the pipeline; a data, gate or export refusal is a result too."""
    challenge = Challenge()
    try:
        pool = build_pool(policy, facts)
        older, recent = window.hold_out(pool.frame, policy.holdout_fraction)
        challenge = Challenge(data=describe_pool(pool, recent))
        choice, selection = choose_window(policy, facts, older, recent, store)
        challenge = replace(challenge, window=choice, selection=selection)
        config, level_note = training_config(policy, facts)
        challenge = replace(challenge, level=level_note)
        progress(f"window: {choice.description} ({len(choice.frame)} rows); {level_note}")
        outcome = pipeline.run(config, progress, dataset=pool.dataset(choice.frame))
    except (data.DataError, pipeline.GateRefused, export.ExportError, ValueError) as exc:
        return replace(challenge, refused=f"no challenger: {exc}")
    return replace(challenge, published=Published(outcome.manifest.version, outcome, config, recent))


def describe_pool(pool: window.Pool, recent: pd.DataFrame) -> dict[str, int]:
    """Where the pool's rows came from and how many are held out (the audit record's `data`)."""
    return {
        "base_rows": pool.base_rows, "production_rows": pool.production_rows,
        "production_immature": pool.production_immature, "duplicates_dropped": pool.duplicates_dropped,
        "pool_rows": len(pool.frame), "holdout_rows": len(recent),
    }  # fmt: skip


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
    # promote=False: the blessing (`bless`) decides; the pipeline only publishes.
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
