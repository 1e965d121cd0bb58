"""The training run, one stage per function: prepare data → choose on protocol folds → fit + calibrate →
refit + export → test → per-repository evidence → assemble → publish.

Each stage takes typed inputs and returns a typed result, never mutating its inputs; `run` is the list of
stages and the only place they are chained. `training/cli/` parses options and prints the outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from app.contract import FEATURES, Calibration, CandidateScore, EvaluationMetrics, ModelManifest, ProtocolReport
from training import calibration, choice, data, evaluate, export, model, protocol, report
from training.calibration import DecisionRule
from training.config import GateRefused, TrainConfig
from training.manifest import build_manifest, importances, library_versions, linear_explanation, reference_sample

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
class Fitted:
    """The chosen recipe fitted on the training period, its raw validation probabilities, the candidates' scores."""

    candidate: model.Candidate
    validation: np.ndarray
    scores: list[CandidateScore]
    reason: str


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
    optional `weight` column in its frame weights the rows of the choice and the final fit.
    """
    prepared = prepare_data(config, progress, dataset)
    chosen = choose_recipe(config, prepared, progress)
    fitted = fit_chosen(config, chosen, prepared.split, progress)
    rule = calibrate(prepared.split, fitted.validation)
    exported = refit_and_export(config, fitted.candidate, rule.platt, prepared.split, progress)
    tested = evaluate_on_test(config, exported, rule.threshold, prepared.split)
    evidence = gather_evidence(config, prepared, chosen, progress)
    assembled = assemble(config, prepared, fitted, rule, exported, tested, evidence)
    write_report = report_writer(prepared.split, rule, tested, assembled)
    published = _publish(config, assembled.manifest, exported.model_bytes, assembled.reference, write_report)
    dropped = prepared.dataset.duplicates_dropped
    return TrainOutcome(
        manifest=published, rows_loaded=len(prepared.dataset.frame) + dropped, rows_used=len(prepared.mature),
        duplicates_dropped=dropped, immature_dropped=prepared.immature,
        parity_max_abs_diff=exported.parity_max_abs_diff, notes=assembled.notes,
        promoted=_is_champion(config.models_dir, published.version),
    )  # fmt: skip


# --- 1. data
def prepare_data(config: TrainConfig, progress: Progress, dataset: data.Dataset | None = None) -> Prepared:
    """Load (or take) the data, keep mature labels, split it and pass the data gates; GateRefused otherwise."""
    if dataset is None:
        dataset = data.load_configured(config, progress)
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


# --- 2. the recipe, chosen on protocol folds before the test period (`training.choice`)
def choose_recipe(config: TrainConfig, prepared: Prepared, progress: Progress) -> choice.Chosen:
    """The configured recipe when hyperparameters are given, else the choice on the pre-test folds."""
    if config.fixed_params is not None:
        progress(f"fitting {config.families[0]} with given hyperparameters (no choice)")
        return choice.given(config)
    split = prepared.split
    folds = choice.folds_of(config, split.train, split.validation, _repositories(prepared))
    return choice.choose(config, folds, progress)


def fit_chosen(config: TrainConfig, chosen: choice.Chosen, split: data.Split, progress: Progress) -> Fitted:
    """The chosen recipe fitted on the training period, and its raw probabilities on the validation period."""
    progress(f"fitting {chosen.family} on {len(split.train)} training rows")
    X, y, weights = data.features(split.train), split.train["buggy"].to_numpy(), data.row_weights(split.train)
    candidate = model.fixed(chosen.family, chosen.params, X, y, seed=config.seed, sample_weight=weights)
    p_val = model.predict(candidate.estimator, data.features(split.validation))
    val_auc = evaluate.roc_auc(split.validation["buggy"].to_numpy(), p_val)
    # The chosen candidate's row records its validation ROC AUC (the others were never fitted on this split).
    scores = [
        c.model_copy(update={"validation_roc_auc": val_auc})
        if (c.name, c.params) == (chosen.family, chosen.params)
        else c
        for c in chosen.candidates
    ]
    return Fitted(candidate=candidate, validation=p_val, scores=scores, reason=chosen.reason)


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


# --- 4. per-repository evidence, the version's contents
def gather_evidence(
    config: TrainConfig, prepared: Prepared, chosen: choice.Chosen, progress: Progress
) -> ProtocolReport | None:
    """The chosen recipe beside the baseline on every protocol fold of all mature rows (None for a random split).

    The choice saw only the rows before the test period; these folds reach into it, so they are evidence,
    not a second choice.
    """
    if prepared.split.kind == "random":
        return None
    folds = protocol.build(prepared.mature, config.test_fraction, config.min_fold_rows, config.max_search_rows,
                           config.seed, _repositories(prepared))  # fmt: skip
    progress(f"per-repository evidence: {chosen.family} and the baseline on {len(folds.folds)} folds")
    end = chosen.folds.frame["author_date"].max() if len(chosen.folds.frame) else None
    return protocol.report(
        folds, (chosen.family, chosen.params), seed=config.seed, n_jobs=config.n_jobs,
        test_fraction=config.test_fraction, label_delay_days=config.label_delay_days, choice=chosen.reason,
        choice_data_end=None if end is None else datetime.fromtimestamp(float(end), UTC),
    )  # fmt: skip


def _repositories(prepared: Prepared) -> list[str]:
    """Every repository loaded, mature or not (one without mature rows is reported, not dropped)."""
    return sorted(prepared.dataset.frame["repository"].astype(str).unique())


def assemble(
    config: TrainConfig,
    prepared: Prepared,
    fitted: Fitted,
    rule: DecisionRule,
    exported: Exported,
    tested: Tested,
    evidence: ProtocolReport | None,
) -> Assembled:
    """The manifest (version set by publish), drift reference sample, importances and warnings of the run."""
    split = prepared.split
    notes = []
    if split.kind == "random":
        notes.append("random split: future commits leak into training, so these figures are optimistic")
    for summary in (evidence.forward, evidence.leave_one_out) if evidence else ():
        notes += [f"{summary.protocol}: {summary.note}"] if summary.note else []
        notes += [f"{summary.protocol}: {f.repository} not scored: {f.skipped}" for f in summary.folds if f.skipped]
    reference = reference_sample(exported.fit_frame, config.reference_rows, config.seed)
    platt = rule.platt
    manifest = build_manifest(
        family=fitted.candidate.family,
        params=fitted.candidate.params,
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
        candidates=fitted.scores,
        model_bytes=exported.model_bytes,
        reference=reference,
        libraries=library_versions(),
        warnings=notes,
    ).model_copy(update={"protocol": evidence, "explanation": linear_explanation(exported.final)})
    # The Platt map is monotone, so ROC AUC importances of the base model are those of the calibrated one.
    weights = importances(exported.final.base, data.features(split.test), split.test["buggy"].to_numpy(), config.seed)
    return Assembled(manifest=manifest, reference=reference, importances=weights, notes=notes)


def report_writer(
    split: data.Split, rule: DecisionRule, tested: Tested, assembled: Assembled
) -> Callable[[Path, ModelManifest], None]:
    """The function `publish` calls to write the report into the version directory (it knows the number)."""

    def write_report(directory: Path, published: ModelManifest) -> None:
        report.write_report(
            directory, title=f"commitrisk model {published.version} ({published.model_type})",
            test=tested.metrics, validation=rule.validation, y_test=split.test["buggy"].to_numpy(),
            p_test=tested.probabilities, effort_test=split.test["effort"].to_numpy(), threshold=rule.threshold,
            bands=rule.bands, importances=assembled.importances, candidates=published.candidates,
            notes=assembled.notes, protocol=published.protocol,
        )  # fmt: skip

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

    return publish.publish(config.models_dir, manifest=manifest, model_bytes=model_bytes, reference=reference,
                           write_report=write_report, promote=config.promote)  # fmt: skip


def _is_champion(models_dir: Path, version_number: int) -> bool:
    from training import publish

    return publish.is_champion(models_dir, version_number)
