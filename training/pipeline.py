"""The training run: load → mature → split → search → choose → export → evaluate → gate → publish.

The only place the training stages are chained; `training/cli/` parses options and prints the outcome.
"""

from __future__ import annotations

import platform
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

from app.contract import FEATURES, Calibration, CandidateScore, EvaluationMetrics, ModelManifest
from training import calibration, choice, data, evaluate, export, model, report
from training.config import MEMBER_FAMILIES, QualityGates, TrainConfig
from training.manifest import build_manifest, importances, reference_sample

Progress = Callable[[str], None]


class GateRefused(RuntimeError):
    """A quality gate refused the data or the model: nothing was published."""


@dataclass
class TrainOutcome:
    """What a run did: rows, candidates, the chosen model, its test metrics and the published version."""

    manifest: ModelManifest
    rows_loaded: int
    rows_used: int
    duplicates_dropped: int
    immature_dropped: int
    parity_max_abs_diff: float
    promoted: bool
    notes: list[str] = field(default_factory=list)


def check_data_gates(y: np.ndarray, gates: QualityGates, where: str) -> None:
    """Refuse too few rows, a lopsided buggy share or too few rows of a class."""
    rows, buggy = len(y), int(np.sum(y))
    clean = rows - buggy
    if rows < gates.min_train_rows:
        raise GateRefused(f"{where}: {rows} rows < min_train_rows {gates.min_train_rows}")
    share = buggy / rows
    if not gates.min_buggy_share <= share <= gates.max_buggy_share:
        raise GateRefused(
            f"{where}: buggy share {share:.1%} outside {gates.min_buggy_share:.0%}–{gates.max_buggy_share:.0%}"
        )
    if min(buggy, clean) < gates.min_rows_per_class:
        raise GateRefused(f"{where}: {buggy} buggy / {clean} clean rows; need ≥ {gates.min_rows_per_class} of each")


def load_inputs(config: TrainConfig, progress: Progress) -> data.Dataset:
    """The configured files, or the embedded synthetic default when none are given."""
    if config.data:
        return data.load(config.data)
    from training.synthetic import spec as synthetic

    progress(f"no data given: generating {config.synthetic_rows} commits from the embedded default")
    frame = synthetic.generate(synthetic.load_default(), rows=config.synthetic_rows, seed=config.seed)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "embedded-default.csv"
        synthetic.write_csv(frame, path)
        return data.load([path])


def run(config: TrainConfig, progress: Progress, dataset: data.Dataset | None = None) -> TrainOutcome:
    """Train, evaluate and publish one model version; raise GateRefused/DataError/ExportError instead.

    `dataset` (retraining) replaces the configured files and must already hold mature labels only; an
    optional `weight` column in its frame weights the rows of the search and the final fit.
    """
    if dataset is None:
        dataset = load_inputs(config, progress)
        mature, immature = data.drop_immature(dataset.frame, config.label_delay_days)
        progress(
            f"{len(dataset.frame)} commits loaded, {immature} immature "
            f"(newest {config.label_delay_days:g} days) held back"
        )
    else:
        # The caller cut immature labels with its own clock; a per-repository cut here would drop mature rows.
        mature, immature = dataset.frame, 0
        progress(f"{len(mature)} mature commits given")
    check_data_gates(mature["buggy"].to_numpy(), config.gates, "mature data")
    if config.split == "random":
        split = data.split_random(mature, config.test_fraction, config.validation_fraction, config.seed)
    else:
        split = data.split_chronological(mature, config.test_fraction, config.validation_fraction)
    X_train, y_train = data.features(split.train), split.train["buggy"].to_numpy()
    X_val, y_val = data.features(split.validation), split.validation["buggy"].to_numpy()
    X_test, y_test = data.features(split.test), split.test["buggy"].to_numpy()
    check_data_gates(y_train, config.gates, "training period")
    for name, y in (("validation", y_val), ("test", y_test)):
        if len(np.unique(y)) < 2:
            raise GateRefused(f"{name} period holds only one class; ROC AUC is undefined")

    # Hyperparameters are searched on the newest rows only: on a million commits an exhaustive search would take
    # hours, and the most recent history is what the test period resembles. The final fit uses every row.
    X_search, y_search = X_train[-config.max_search_rows :], y_train[-config.max_search_rows :]
    w_train = row_weights(split.train)
    w_search = None if w_train is None else w_train[-config.max_search_rows :]
    candidates = _candidates(config, X_train, y_train, X_search, y_search, w_train, w_search, progress)
    scores: list[CandidateScore] = []
    raw_val = [model.predict(c.estimator, X_val) for c in candidates]
    for candidate, p in zip(candidates, raw_val, strict=True):
        val_auc = evaluate.evaluate(y_val, p, split.validation["effort"].to_numpy(), 0.5).roc_auc
        scores.append(
            CandidateScore(
                name=candidate.family,
                validation_roc_auc=float(val_auc or 0.0),
                cv_roc_auc=candidate.cv_roc_auc,
                params=candidate.params,
                fit_seconds=round(candidate.fit_seconds, 3),
            )
        )
        cv = "-" if candidate.cv_roc_auc is None else f"{candidate.cv_roc_auc:.3f}"
        progress(f"{candidate.family}: cv ROC AUC {cv}, validation ROC AUC {val_auc:.3f}")

    picked = choice.choose([c.family for c in candidates], y_val, raw_val, config.ensemble_margin_se)
    progress(picked.reason)
    chosen = candidates[picked.index]
    # Platt map, threshold and bands all come from the validation period (calibration.py says why).
    platt = calibration.fit(y_val, raw_val[picked.index])
    p_val = platt.apply(raw_val[picked.index])
    threshold = evaluate.choose_threshold(y_val, p_val)
    bands = evaluate.choose_bands(y_val, p_val, threshold)
    validation_metrics = evaluate.evaluate(y_val, p_val, split.validation["effort"].to_numpy(), threshold)

    # Threshold and bands come from validation; the final fit then also learns from the validation period,
    # which is the most recent mature history the test period has not seen.
    fit_frame = pd.concat([split.train, split.validation], ignore_index=True)
    X_fit, y_fit = data.features(fit_frame), fit_frame["buggy"].to_numpy()
    progress(f"refitting {chosen.family} on {len(fit_frame)} train + validation rows")
    final = calibration.Calibrated(model.refit(chosen, X_fit, y_fit, row_weights(fit_frame)), platt)
    model_bytes = export.to_onnx(final, len(FEATURES))
    parity = export.check_parity(model_bytes, final, X_test, config.parity_tolerance)
    p_test = export.onnx_probabilities(model_bytes, X_test)
    test_metrics = evaluate.evaluate(y_test, p_test, split.test["effort"].to_numpy(), threshold)
    if test_metrics.roc_auc is None or test_metrics.roc_auc < config.gates.min_test_roc_auc:
        raise GateRefused(f"test ROC AUC {test_metrics.roc_auc} < min_test_roc_auc {config.gates.min_test_roc_auc}")

    notes = []
    if split.kind == "random":
        notes.append("random split: future commits leak into training, so these figures are optimistic")
    reference = reference_sample(fit_frame, config.reference_rows, config.seed)
    manifest = build_manifest(
        family=chosen.family,
        params=chosen.params,
        fit_frame=fit_frame,
        split=split,
        dataset=dataset,
        immature=immature,
        config=config,
        threshold=threshold,
        calibration=Calibration(a=platt.a, b=platt.b) if platt != calibration.IDENTITY else None,
        bands=bands,
        validation=validation_metrics,
        test=test_metrics,
        candidates=scores,
        model_bytes=model_bytes,
        reference=reference,
        libraries=library_versions(),
        warnings=notes,
    )
    # The Platt map is monotone, so ROC AUC importances of the base model are those of the calibrated one.
    weights = importances(final.base, X_test, y_test, config.seed)

    def write_report(directory: Path, published: ModelManifest) -> None:
        report.write_report(
            directory,
            title=f"commitrisk model {published.version} ({published.model_type})",
            test=test_metrics,
            validation=validation_metrics,
            y_test=y_test,
            p_test=p_test,
            effort_test=split.test["effort"].to_numpy(),
            threshold=threshold,
            bands=bands,
            importances=weights,
            candidates=scores,
            notes=notes,
        )

    published = _publish(config, manifest, model_bytes, reference, write_report)
    return TrainOutcome(
        manifest=published,
        rows_loaded=len(dataset.frame) + dataset.duplicates_dropped,
        rows_used=len(mature),
        duplicates_dropped=dataset.duplicates_dropped,
        immature_dropped=immature,
        parity_max_abs_diff=parity.max_abs_diff,
        promoted=_is_champion(config.models_dir, published.version),
        notes=notes,
    )


def _candidates(
    config: TrainConfig,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_search: np.ndarray,
    y_search: np.ndarray,
    w_train: np.ndarray | None,
    w_search: np.ndarray | None,
    progress: Progress,
) -> list[model.Candidate]:
    """One fitted candidate per configured family, in the configured order.

    The ensemble reuses the members searched for their own candidates (each family is searched once).
    """
    if config.fixed_params is not None:
        (family,) = config.families
        progress(f"fitting {family} with given hyperparameters (no search)")
        return [model.fixed(family, config.fixed_params, X_train, y_train, seed=config.seed, sample_weight=w_train)]
    searched: dict[str, model.Candidate] = {}
    with_ensemble = "ensemble" in config.families
    for family in MEMBER_FAMILIES:
        if family in config.families or with_ensemble:
            progress(f"searching {family} ({config.budget} candidates × {config.cv_folds} time-ordered folds)")
            searched[family] = model.search(
                family, X_search, y_search, budget=config.budget, folds=config.cv_folds, seed=config.seed,
                n_jobs=config.n_jobs, sample_weight=w_search, features=config.features,
            )  # fmt: skip
    if with_ensemble:
        searched["ensemble"] = model.combine([searched[f] for f in MEMBER_FAMILIES])
    return [searched[f] for f in config.families]


def row_weights(frame: pd.DataFrame) -> np.ndarray | None:
    """The optional per-row `weight` column (dynamic data selection), or None."""
    return frame["weight"].to_numpy(dtype=np.float64) if "weight" in frame.columns else None


def _publish(
    config: TrainConfig,
    manifest: ModelManifest,
    model_bytes: bytes,
    reference: pd.DataFrame,
    write_report: Callable[[Path, ModelManifest], None],
) -> ModelManifest:
    from training import publish

    return publish.publish(
        config.models_dir,
        manifest=manifest,
        model_bytes=model_bytes,
        reference=reference,
        write_report=write_report,
        promote=config.promote,
    )


def _is_champion(models_dir: Path, version_number: int) -> bool:
    from training import publish

    return publish.read_pointer(models_dir) == version_number


def library_versions() -> dict[str, str]:
    """Versions of everything that shaped the model file, for reproducibility."""
    found = {"python": platform.python_version()}
    for name in ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "pandas", "commitrisk"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "unknown"
    return found


def now() -> datetime:
    """Timezone-aware UTC now (one place, so manifests agree on the format)."""
    return datetime.now(UTC)


__all__ = ["EvaluationMetrics", "GateRefused", "TrainOutcome", "run"]
