"""Training commands: train, evaluate."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from training.cli.root import EXIT_REFUSED, ModelsDir, cli, fail, fail_options

if TYPE_CHECKING:
    from training.cli.output import Reporter
    from training.config import TrainConfig
    from training.pipeline import TrainOutcome


class SplitKind(str, Enum):
    chronological = "chronological"
    random = "random"


class FeatureChoice(str, Enum):
    relative_churn = "relative_churn"
    raw = "raw"


@cli.command()
def train(
    data: Annotated[
        list[Path] | None, typer.Option("--data", help="CSV file or folder (repeatable); default: embedded data")
    ] = None,
    models: ModelsDir = Path("models"),
    budget: Annotated[int, typer.Option(min=1, help="hyperparameter settings per tree family (logistic: a grid)")] = 3,
    label_delay_days: Annotated[float, typer.Option(min=0, help="newest days whose labels are immature")] = 90.0,
    test_fraction: Annotated[float, typer.Option(min=0.05, max=0.45, help="newest mature share tested")] = 0.2,
    split: Annotated[
        SplitKind, typer.Option(help="random is optimistic: only for comparison")
    ] = SplitKind.chronological,
    family: Annotated[
        list[str] | None,
        typer.Option("--family", help="logistic_regression, random_forest, gradient_boosting, ensemble"),
    ] = None,
    features: Annotated[
        list[FeatureChoice] | None,
        typer.Option("--features", help="inputs tried (repeatable): raw metrics, + relative churn; default both"),
    ] = None,
    margin_se: Annotated[
        float, typer.Option(min=0, help="a more complex candidate must beat the simpler by more than this many SEs")
    ] = 1.0,
    min_fold_rows: Annotated[
        int, typer.Option(min=2, help="mature test commits a repository's fold needs (else reported, not scored)")
    ] = 30,
    seed: int = 42,
    promote: Annotated[bool, typer.Option(help="make the new version champion (the first always is)")] = True,
    min_test_roc_auc: Annotated[float, typer.Option(min=0, max=1, help="quality gate on the test period")] = 0.6,
    mlflow: Annotated[str | None, typer.Option("--mlflow", help="MLflow tracking URI (or MLFLOW_TRACKING_URI)")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON object instead of tables")] = False,
) -> None:
    """Choose a recipe on per-repository folds, fit, calibrate, test it, publish models/<N>/ with its evidence."""
    import os

    from pydantic import ValidationError

    from training.cli.output import Reporter
    from training.config import QualityGates, TrainConfig

    try:
        config = TrainConfig(
            data=data or [],
            models_dir=models,
            budget=budget,
            label_delay_days=label_delay_days,
            test_fraction=test_fraction,
            split=split.value,
            families=tuple(family) if family else TrainConfig.model_fields["families"].default,
            features=tuple(f.value for f in features) if features else TrainConfig.model_fields["features"].default,
            margin_se=margin_se,
            min_fold_rows=min_fold_rows,
            seed=seed,
            promote=promote,
            gates=QualityGates(min_test_roc_auc=min_test_roc_auc),
            mlflow_uri=mlflow or os.environ.get("MLFLOW_TRACKING_URI") or None,
        )
    except ValidationError as exc:
        fail_options(exc)
    reporter = Reporter(json_output=json_output)
    outcome = run_training(config, reporter)
    reporter.summary(outcome)


def run_training(config: TrainConfig, reporter: Reporter) -> TrainOutcome:
    """Run the pipeline, turning each expected failure into one line and its exit code."""
    from training import pipeline
    from training.data import DataError
    from training.export import ExportError
    from training.publish import PublishError

    try:
        with reporter.progress() as progress:
            outcome = pipeline.run(config, progress)
    except DataError as exc:
        fail(str(exc))
    except pipeline.GateRefused as exc:
        fail(f"refused, nothing published: {exc}", EXIT_REFUSED)
    except ExportError as exc:
        fail(f"refused, nothing published: {exc}", EXIT_REFUSED)
    except PublishError as exc:
        fail(str(exc))
    if config.mlflow_uri:
        from training.tracking import TrackingError, log_run

        try:
            log_run(config.mlflow_uri, config, outcome)
        except TrackingError as exc:
            fail(f"version {outcome.manifest.version} was published, but {exc}", 1)
    return outcome


@cli.command("evaluate")
def evaluate_command(
    models: ModelsDir = Path("models"),
    data: Annotated[list[Path], typer.Option("--data", help="labelled CSV file or folder (repeatable)")] = ...,  # type: ignore[assignment]
    version: Annotated[int | None, typer.Option(help="version to score (default: the champion)")] = None,
    label_delay_days: Annotated[float, typer.Option(min=0, help="only mature rows are scored")] = 90.0,
    min_rows: Annotated[int, typer.Option(min=2, help="mature commits a repository needs to be scored")] = 30,
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Score a model version on other labelled data: per repository (with 95% CIs), their mean, and pooled."""
    from training.assessment import ScoringError, score_version
    from training.cli.output import print_evaluation
    from training.data import DataError

    try:
        result = score_version(models, version, data, label_delay_days, min_rows)
    except (DataError, ScoringError) as exc:
        fail(str(exc))
    print_evaluation(result, json_output)
