"""The training run, one stage per function: prepare data → fit candidates → score → choose → calibrate →
refit + export → test → assemble → publish.

Each stage takes typed inputs and returns a typed result, never mutating its inputs; `run` is the list of
stages and the only place they are chained. `training/cli/` parses options and prints the outcome.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from app.contract import FEATURES, Calibration, EvaluationMetrics, ModelManifest
from training import calibration, choice, data, evaluate, export, model, report
from training.calibration import DecisionRule
from training.choice import Chosen, Scored
from training.config import MEMBER_FAMILIES, GateRefused, TrainConfig
from training.manifest import build_manifest, importances, library_versions, reference_sample

Progress = Callable[[str], None]


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


@dataclass(frozen=True)
class Prepared:
    """The run's data: what was loaded (or given), its mature rows and their train/validation/test split."""

    dataset: data.Dataset
    mature: pd.DataFrame
    immature: int
    split: data.Split


@dataclass(frozen=True)
class Exported:
    """The chosen model refitted on train + validation and calibrated, its ONNX bytes and their parity."""

    fit_frame: pd.DataFrame
    final: calibration.Calibrated
    model_bytes: bytes
    parity_max_abs_diff: float


@dataclass(frozen=True)
class Tested:
    """The exported model's probabilities and metrics on the test period (it passed the test gate)."""

    probabilities: np.ndarray
    metrics: EvaluationMetrics


@dataclass(frozen=True)
class Assembled:
    """Everything a version directory holds besides the model: manifest, drift reference, report inputs."""

    manifest: ModelManifest
    reference: pd.DataFrame
    importances: dict[str, float]
    notes: list[str]


def run(config: TrainConfig, progress: Progress, dataset: data.Dataset | None = None) -> TrainOutcome:
    """Train, evaluate and publish one model version; raise GateRefused/DataError/ExportError instead.

    `dataset` (retraining) replaces the configured files and must already hold mature labels only; an
    optional `weight` column in its frame weights the rows of the search and the final fit.
    """
    prepared = prepare_data(config, progress, dataset)
    scored = choice.score(fit_candidates(config, prepared.split, progress), prepared.split.validation, progress)
    chosen = choice.pick(scored, prepared.split.validation, config.ensemble_margin_se, progress)
    rule = calibrate(prepared.split, chosen.validation)
    exported = refit_and_export(config, chosen.candidate, rule.platt, prepared.split, progress)
    tested = evaluate_on_test(config, exported, rule.threshold, prepared.split)
    assembled = assemble(config, prepared, chosen, scored, rule, exported, tested)
    write_report = report_writer(prepared.split, scored, rule, tested, assembled)
    published = _publish(config, assembled.manifest, exported.model_bytes, assembled.reference, write_report)
    return TrainOutcome(
        manifest=published,
        rows_loaded=len(prepared.dataset.frame) + prepared.dataset.duplicates_dropped,
        rows_used=len(prepared.mature),
        duplicates_dropped=prepared.dataset.duplicates_dropped,
        immature_dropped=prepared.immature,
        parity_max_abs_diff=exported.parity_max_abs_diff,
        promoted=_is_champion(config.models_dir, published.version),
        notes=assembled.notes,
    )


# --- 1. data
def prepare_data(config: TrainConfig, progress: Progress, dataset: data.Dataset | None = None) -> Prepared:
    """Load (or take) the data, keep mature labels, split it and pass the data gates; GateRefused otherwise."""
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
    data.check_data_gates(mature["buggy"].to_numpy(), config.gates, "mature data")
    split = data.split(mature, config)
    data.check_split(split, config.gates)
    return Prepared(dataset=dataset, mature=mature, immature=immature, split=split)


def load_inputs(config: TrainConfig, progress: Progress) -> data.Dataset:
    """The configured files, or the embedded synthetic default when none are given."""
    if config.data:
        return data.load(config.data)
    from training.synthetic.generate import generate, write_csv
    from training.synthetic.spec import load_default

    progress(f"no data given: generating {config.synthetic_rows} commits from the embedded default")
    frame = generate(load_default(), rows=config.synthetic_rows, seed=config.seed)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "embedded-default.csv"
        write_csv(frame, path)
        return data.load([path])


# --- 2. candidates (scored and chosen by `training.choice`)
def fit_candidates(config: TrainConfig, split: data.Split, progress: Progress) -> list[model.Candidate]:
    """One fitted candidate per configured family, in the configured order.

    Hyperparameters are searched on the newest `max_search_rows` training rows only: on a million commits an
    exhaustive search would take hours, and the most recent history is what the test period resembles (the
    final fit uses every row). The ensemble reuses the members searched for their own candidates.
    """
    X_train, y_train = data.features(split.train), split.train["buggy"].to_numpy()
    w_train = data.row_weights(split.train)
    if config.fixed_params is not None:
        (family,) = config.families
        progress(f"fitting {family} with given hyperparameters (no search)")
        return [model.fixed(family, config.fixed_params, X_train, y_train, seed=config.seed, sample_weight=w_train)]
    X_search, y_search = X_train[-config.max_search_rows :], y_train[-config.max_search_rows :]
    w_search = None if w_train is None else w_train[-config.max_search_rows :]
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


# --- 3. calibration, refit, export, test
def calibrate(split: data.Split, raw_validation: np.ndarray) -> DecisionRule:
    """Platt map, F1 threshold and risk bands from the validation period (calibration.py says why)."""
    validation = split.validation
    return calibration.decision_rule(validation["buggy"].to_numpy(), raw_validation, validation["effort"].to_numpy())


def refit_and_export(
    config: TrainConfig, candidate: model.Candidate, platt: calibration.Platt, split: data.Split, progress: Progress
) -> Exported:
    """Refit on train + validation, append the Platt map, export to ONNX and check parity on the test rows.

    Threshold and bands come from validation; the final fit then also learns from the validation period,
    which is the most recent mature history the test period has not seen.
    """
    fit_frame = pd.concat([split.train, split.validation], ignore_index=True)
    X_fit, y_fit = data.features(fit_frame), fit_frame["buggy"].to_numpy()
    progress(f"refitting {candidate.family} on {len(fit_frame)} train + validation rows")
    final = calibration.Calibrated(model.refit(candidate, X_fit, y_fit, data.row_weights(fit_frame)), platt)
    model_bytes = export.to_onnx(final, len(FEATURES))
    parity = export.check_parity(model_bytes, final, data.features(split.test), config.parity_tolerance)
    return Exported(fit_frame=fit_frame, final=final, model_bytes=model_bytes, parity_max_abs_diff=parity.max_abs_diff)


def evaluate_on_test(config: TrainConfig, exported: Exported, threshold: float, split: data.Split) -> Tested:
    """Score the ONNX model (what the service will run) on the test period; GateRefused below the ROC AUC gate."""
    y_test = split.test["buggy"].to_numpy()
    p_test = export.onnx_probabilities(exported.model_bytes, data.features(split.test))
    metrics = evaluate.evaluate(y_test, p_test, split.test["effort"].to_numpy(), threshold)
    if metrics.roc_auc is None or metrics.roc_auc < config.gates.min_test_roc_auc:
        raise GateRefused(f"test ROC AUC {metrics.roc_auc} < min_test_roc_auc {config.gates.min_test_roc_auc}")
    return Tested(probabilities=p_test, metrics=metrics)


# --- 4. the version's contents
def assemble(
    config: TrainConfig,
    prepared: Prepared,
    chosen: Chosen,
    scored: Scored,
    rule: DecisionRule,
    exported: Exported,
    tested: Tested,
) -> Assembled:
    """The manifest (version set by publish), drift reference sample, importances and warnings of the run."""
    split = prepared.split
    notes = []
    if split.kind == "random":
        notes.append("random split: future commits leak into training, so these figures are optimistic")
    reference = reference_sample(exported.fit_frame, config.reference_rows, config.seed)
    platt = rule.platt
    manifest = build_manifest(
        family=chosen.candidate.family,
        params=chosen.candidate.params,
        fit_frame=exported.fit_frame,
        split=split,
        dataset=prepared.dataset,
        immature=prepared.immature,
        config=config,
        threshold=rule.threshold,
        calibration=Calibration(a=platt.a, b=platt.b) if platt != calibration.IDENTITY else None,
        bands=rule.bands,
        validation=rule.validation,
        test=tested.metrics,
        candidates=scored.scores,
        model_bytes=exported.model_bytes,
        reference=reference,
        libraries=library_versions(),
        warnings=notes,
    )
    # The Platt map is monotone, so ROC AUC importances of the base model are those of the calibrated one.
    weights = importances(exported.final.base, data.features(split.test), split.test["buggy"].to_numpy(), config.seed)
    return Assembled(manifest=manifest, reference=reference, importances=weights, notes=notes)


def report_writer(
    split: data.Split, scored: Scored, rule: DecisionRule, tested: Tested, assembled: Assembled
) -> Callable[[Path, ModelManifest], None]:
    """The function `publish` calls to write the report into the version directory (it knows the number)."""

    def write_report(directory: Path, published: ModelManifest) -> None:
        report.write_report(
            directory,
            title=f"commitrisk model {published.version} ({published.model_type})",
            test=tested.metrics,
            validation=rule.validation,
            y_test=split.test["buggy"].to_numpy(),
            p_test=tested.probabilities,
            effort_test=split.test["effort"].to_numpy(),
            threshold=rule.threshold,
            bands=rule.bands,
            importances=assembled.importances,
            candidates=scored.scores,
            notes=assembled.notes,
        )

    return write_report


# --- 5. publish
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
    from app.errors import CommitRiskError
    from app.repository import ModelRepository
    from training.publish import PublishError

    try:
        return ModelRepository(models_dir).pointer() == version_number
    except CommitRiskError as exc:
        raise PublishError(exc.message) from None
