"""The `commitrisk` command line: the only place where pipeline stages are chained.

Heavy libraries (scikit-learn, onnxruntime, pygit2, evidently) are imported inside the commands, so
`commitrisk serve` works in the serving image, which has none of the training extras.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from training.config import TrainConfig
    from training.pipeline import TrainOutcome
    from training.summary import Reporter

cli = typer.Typer(
    name="commitrisk",
    help="Just-in-time defect prediction: mine, train, serve, monitor and retrain.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


models_cli = typer.Typer(help="List published model versions and move the champion pointer.", no_args_is_help=True)
cli.add_typer(models_cli, name="models")

# Exit codes: 1 unexpected failure, 2 bad input (file, field, option), 3 refused by a quality gate.
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3

ModelsDir = Annotated[Path, typer.Option("--models", help="models directory (holds <N>/ and pointers)")]


class SplitKind(str, Enum):
    chronological = "chronological"
    random = "random"


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print one line to stderr and exit with `code`."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


@cli.command()
def train(
    data: Annotated[
        list[Path] | None, typer.Option("--data", help="CSV file or folder (repeatable); default: embedded data")
    ] = None,
    models: ModelsDir = Path("models"),
    budget: Annotated[int, typer.Option(min=1, help="hyperparameter candidates per model family")] = 12,
    label_delay_days: Annotated[float, typer.Option(min=0, help="newest days whose labels are immature")] = 90.0,
    test_fraction: Annotated[float, typer.Option(min=0.05, max=0.45, help="newest mature share tested")] = 0.2,
    split: Annotated[
        SplitKind, typer.Option(help="random is optimistic: only for comparison")
    ] = SplitKind.chronological,
    family: Annotated[
        list[str] | None, typer.Option("--family", help="logistic_regression, random_forest, gradient_boosting")
    ] = None,
    seed: int = 42,
    promote: Annotated[bool, typer.Option(help="make the new version champion (the first always is)")] = True,
    min_test_roc_auc: Annotated[float, typer.Option(min=0, max=1, help="quality gate on the test period")] = 0.6,
    mlflow: Annotated[str | None, typer.Option("--mlflow", help="MLflow tracking URI (or MLFLOW_TRACKING_URI)")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON object instead of tables")] = False,
) -> None:
    """Train candidates on mature commits, pick one on validation data, test it, publish models/<N>/."""
    import os

    from pydantic import ValidationError

    from training.config import QualityGates, TrainConfig
    from training.summary import Reporter

    try:
        config = TrainConfig(
            data=data or [],
            models_dir=models,
            budget=budget,
            label_delay_days=label_delay_days,
            test_fraction=test_fraction,
            split=split.value,
            families=tuple(family) if family else TrainConfig.model_fields["families"].default,
            seed=seed,
            promote=promote,
            gates=QualityGates(min_test_roc_auc=min_test_roc_auc),
            mlflow_uri=mlflow or os.environ.get("MLFLOW_TRACKING_URI") or None,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"option {'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    reporter = Reporter(json_output=json_output)
    outcome = _run_training(config, reporter)
    reporter.summary(outcome)


def _run_training(config: TrainConfig, reporter: Reporter) -> TrainOutcome:
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
    json_output: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Score an existing model version on another labelled dataset and print the test metrics."""
    from training.data import DataError
    from training.scoring import ScoringError, score_version
    from training.summary import print_evaluation

    try:
        result = score_version(models, version, data, label_delay_days)
    except (DataError, ScoringError) as exc:
        fail(str(exc))
    print_evaluation(result, json_output)


@models_cli.command("list")
def models_list(
    models: ModelsDir = Path("models"),
    json_output: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Published versions with their type, test metrics and pointers."""
    from training.summary import print_versions

    print_versions(models, json_output)


@models_cli.command("promote")
def models_promote(version: int, models: ModelsDir = Path("models")) -> None:
    """Make VERSION the champion (atomic pointer move); the service picks it up on reload."""
    from training.publish import PublishError, write_pointer

    try:
        write_pointer(models, version)
    except PublishError as exc:
        fail(str(exc))
    print(f"champion -> {version}")


@models_cli.command("rollback")
def models_rollback(models: ModelsDir = Path("models")) -> None:
    """Point the champion back at the version it named before."""
    from training.publish import PublishError, rollback

    try:
        version = rollback(models)
    except PublishError as exc:
        fail(str(exc))
    print(f"champion -> {version}")


@cli.command("generate")
def generate_command(
    rows: Annotated[int, typer.Option(min=1, help="number of commits to generate")] = 6000,
    out: Annotated[Path, typer.Option("--out", help="CSV file to write (shared dataset format)")] = ...,  # type: ignore[assignment]
    seed: Annotated[int, typer.Option(help="same seed, same rows")] = 42,
    repositories: Annotated[int, typer.Option(min=1, help="repositories the rows are spread over")] = 1,
    drift: Annotated[float, typer.Option(min=0.0, max=1.0, help="0 none … 1 strong by the end")] = 0.0,
    spec: Annotated[Path | None, typer.Option(help="spec JSON (default: the embedded one)")] = None,
) -> None:
    """Write a synthetic commit dataset fitted to real JIT data (no external data needed)."""
    from pydantic import ValidationError

    from training.synthetic import generate, load_default, load_spec, write_csv

    try:
        fitted = load_spec(spec) if spec else load_default()
        frame = generate(fitted, rows, seed, repositories=repositories, drift=drift)
    except (OSError, ValidationError, ValueError) as exc:
        fail(f"{spec or 'embedded spec'}: {str(exc).splitlines()[0]}")
    write_csv(frame, out)
    print(f"{out}: {len(frame)} commits, {int(frame['buggy'].sum())} buggy")


DEFAULT_SPEC_PATH = Path("training/defaults/jit_synthetic.json")


@cli.command("fit-synthetic")
def fit_synthetic_command(
    data: Annotated[list[Path], typer.Argument(help="real commit CSV files or folders")],
    out: Annotated[Path, typer.Option("--out", help="spec JSON to write")] = DEFAULT_SPEC_PATH,
) -> None:
    """Refit the synthetic-data spec (marginals, copula, label model, time axis) to real commits."""
    from training.synthetic import fit, write_spec

    try:
        fitted = fit(data)
    except (OSError, ValueError) as exc:
        fail(str(exc).splitlines()[0])
    write_spec(fitted, out)
    print(f"{out}: fitted on {fitted.rows} commits from {len(fitted.sources)} files")


@cli.command("mine")
def mine_command(
    repo: Annotated[Path, typer.Argument(help="git repository (work tree or bare)")] = Path("."),
    out: Annotated[Path, typer.Option("--out", help="CSV to write (dataset format)")] = Path("commits.csv"),
    since: Annotated[str | None, typer.Option(help="only rows authored on/after this ISO date")] = None,
    branches: Annotated[str, typer.Option(help="all (local + remote branches) or HEAD")] = "all",
    state: Annotated[
        Path | None, typer.Option(help="incremental state file (default: OUT.state)", show_default=False)
    ] = None,
    no_state: Annotated[bool, typer.Option("--no-state", help="neither read nor write a state file")] = False,
    labels: Annotated[bool, typer.Option(help="SZZ labels (buggy, fixed_by); --no-labels is faster")] = True,
    fix_shas: Annotated[Path | None, typer.Option(help="file of issue-tracker fix SHAs, one a line")] = None,
    repository_id: Annotated[str | None, typer.Option(help="repository_id (default: dir name)")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="blame processes (default: CPU count)")] = None,
    progress: Annotated[bool, typer.Option(help="progress bar on stderr")] = True,
) -> None:
    """Mine the 15 change metrics and SZZ labels of every commit into a dataset CSV."""
    from training.mining.command import run_mine

    state_path = None if no_state else (state or out.with_name(out.name + ".state"))
    code = run_mine(
        repo, out, since=since, branches=branches, state_path=state_path, labels=labels, fix_shas=fix_shas,
        repository_id=repository_id, workers=workers, progress=progress,
    )  # fmt: skip
    raise typer.Exit(code)


@cli.command("score")
def score_command(
    url: Annotated[str, typer.Option(help="service base URL (POSTs to URL/predict)")],
    repo: Annotated[Path, typer.Option(help="git repository")] = Path("."),
    rev: Annotated[str, typer.Option(help="commit to score")] = "HEAD",
    fail_above: Annotated[
        str | None, typer.Option(help="exit 1 when the risk band is at/above: medium or high")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="print the service's JSON answer")] = False,
    state: Annotated[Path | None, typer.Option(help="mining state file to reuse (from `mine`)")] = None,
    repository_id: Annotated[str | None, typer.Option(help="repository name (default: dir name)")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="HTTP timeout in seconds")] = 30.0,
) -> None:
    """Score one commit in CI: metrics from history, POST /predict, print band and reasons, gate on band."""
    from training.mining.command import run_score

    code = run_score(
        repo, url, rev=rev, fail_above=fail_above, as_json=json_output, state_path=state,
        repository_id=repository_id, timeout=timeout,
    )  # fmt: skip
    raise typer.Exit(code)


feedback_cli = typer.Typer(help="Send late labels (defect outcomes) to a service.", no_args_is_help=True)
cli.add_typer(feedback_cli, name="feedback")
AdminToken = Annotated[
    str | None, typer.Option(envvar="COMMITRISK_ADMIN_TOKEN", help="admin bearer token", show_default=False)
]


@feedback_cli.command("import")
def feedback_import(
    file: Annotated[Path, typer.Argument(help="CSV with commit_id,buggy[,repository,fixed_by,labeled_at]")],
    url: Annotated[str, typer.Option(help="service base URL")],
    token: AdminToken = None,
) -> None:
    """Upsert labels from a CSV (the dataset format works) via POST /feedback; idempotent."""
    from training.feedback import FeedbackError, import_feedback

    try:
        read, upserted = import_feedback(file, url, token)
    except FeedbackError as exc:
        fail(str(exc))
    print(f"{file}: {read} labels sent, {upserted} upserted")


@cli.command("replay")
def replay_command(
    data: Annotated[Path, typer.Argument(help="labelled dataset CSV (shared dataset format)")],
    url: Annotated[str, typer.Option(help="service base URL")],
    speed: Annotated[
        float, typer.Option(min=0, help="dataset seconds per wall-clock second (0: as fast as possible)")
    ] = 0.0,
    label_delay_days: Annotated[float, typer.Option(min=0, help="days until a label is sent")] = 90.0,
    token: AdminToken = None,
    progress: Annotated[bool, typer.Option(help="progress bar on stderr")] = True,
) -> None:
    """Replay commits in time order to /predict and their labels to /feedback once mature."""
    from training.feedback import FeedbackError
    from training.replay import run_replay

    try:
        s = run_replay(data, url, speed, label_delay_days, token, progress)
    except FeedbackError as exc:
        fail(str(exc))
    print(f"{data}: {s.predicted} predicted, {s.rejected} rejected {s.errors or ''}, "
          f"{s.labels_sent} labels sent, {s.labels_pending} still immature")  # fmt: skip


@cli.command("monitor")
def monitor_command(
    models: ModelsDir = Path("models"),
    once: Annotated[bool, typer.Option(help="one drift run, then exit")] = False,
) -> None:
    """Run the drift job on its schedule outside the API (`monitor` extra); settings from COMMITRISK_*."""
    import logging

    from pydantic import ValidationError

    from app.drift import evidently_available
    from app.monitor import run_monitor
    from app.settings import Settings

    if not evidently_available():
        fail("evidently: not installed; pip install 'commitrisk[monitor]'")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = Settings(models_dir=models)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"COMMITRISK_{str(first['loc'][0]).upper()}: {first['msg']}")
    run_monitor(settings, once)


@cli.command("serve")
def serve_command(
    models: ModelsDir = Path("models"),
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes (each loads the model)")] = 1,
) -> None:
    """Serve the champion model over HTTP (FastAPI + onnxruntime); settings from COMMITRISK_* variables."""
    from pydantic import ValidationError

    from app.main import serve

    if not models.is_dir():
        fail(f"{models}: models directory does not exist (train one with `commitrisk train --models {models}`)")
    try:
        serve(models, host, port, workers)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"COMMITRISK_{str(first['loc'][0]).upper()}: {first['msg']}")


@cli.command("start")
def start_command(
    models: ModelsDir = Path("models"),
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes")] = 1,
    budget: Annotated[int, typer.Option(min=1, help="search budget if a model must be trained first")] = 12,
) -> None:
    """The main job: train on the embedded default data if MODELS has no champion yet, then serve it."""
    from training.publish import PublishError, read_pointer

    try:
        champion = read_pointer(models)
    except PublishError as exc:
        fail(str(exc))
    if champion is None:
        try:
            from training.config import TrainConfig
            from training.summary import Reporter
        except ImportError:
            fail(f"{models}: no champion model, and training needs the 'train' extra: pip install 'commitrisk[train]'")
        reporter = Reporter(json_output=False)
        reporter.summary(_run_training(TrainConfig(models_dir=models, budget=budget), reporter))
    serve_command(models=models, host=host, port=port, workers=workers)


class WindowKind(str, Enum):
    fixed = "fixed"
    dynamic = "dynamic"
    selection = "selection"


class RetrainLevel(str, Enum):
    refit = "refit"
    search = "search"
    select = "select"


class DeployMode(str, Enum):
    none = "none"
    direct = "direct"
    shadow = "shadow"


ServiceUrl = Annotated[
    str | None, typer.Option("--url", envvar="COMMITRISK_SERVICE_URL", help="service to /reload after deploying")
]


@cli.command("retrain")
def retrain_command(
    models: ModelsDir = Path("models"),
    data: Annotated[list[Path] | None, typer.Option("--data", help="base dataset CSV/folder (repeatable)")] = (None),
    database_url: Annotated[
        str | None, typer.Option(envvar="COMMITRISK_DATABASE_URL", help="prediction log + feedback + drift DB")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="decide and explain, train nothing")] = False,
    force: Annotated[bool, typer.Option("--force", help="on-demand trigger: retrain regardless")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="print the audit record as JSON")] = False,
    window: Annotated[WindowKind, typer.Option(help="how much data")] = WindowKind.dynamic,
    window_days: Annotated[float | None, typer.Option(min=1, help="fixed/selection: last N days")] = None,
    window_rows: Annotated[int | None, typer.Option(min=1, help="fixed/selection: last N rows")] = None,
    level: Annotated[RetrainLevel, typer.Option(help="refit | search hyperparameters | select model")] = (
        RetrainLevel.search
    ),
    deploy: Annotated[DeployMode, typer.Option(help="after a blessing: move champion or shadow")] = (DeployMode.direct),
    url: ServiceUrl = None,
    token: AdminToken = None,
    every: Annotated[str | None, typer.Option(help="run forever: one check per period (90s, 6h, 1d)")] = None,
    min_delta: Annotated[float, typer.Option(min=0, max=1, help="ROC AUC the challenger must win by")] = 0.01,
    max_age_days: Annotated[float, typer.Option(min=0.001, help="interval trigger")] = 30.0,
    performance_floor: Annotated[float, typer.Option(min=0, max=1, help="performance trigger")] = 0.65,
    drift_threshold: Annotated[float, typer.Option(min=0, max=1, help="drift share trigger")] = 0.5,
    label_delay_days: Annotated[
        float, typer.Option(min=0, envvar="COMMITRISK_LABEL_DELAY_DAYS", help="production labels mature after")
    ] = 90.0,
    budget: Annotated[int, typer.Option(min=1, help="search candidates per family")] = 8,
    mlflow: Annotated[str | None, typer.Option("--mlflow", envvar="MLFLOW_TRACKING_URI", help="MLflow URI")] = (None),
) -> None:
    """Evaluate retrain triggers; when one fires, train a challenger, compare it, deploy it; audit all."""
    from pydantic import ValidationError

    from training.policy import RetrainPolicy
    from training.retrain import command
    from training.schedule import parse_every

    try:
        period = parse_every(every) if every else None
        policy = RetrainPolicy(
            models_dir=models, data=data or [], database_url=database_url, dry_run=dry_run, force=force,
            window=window.value, window_days=window_days, window_rows=window_rows, level=level.value,
            deploy=deploy.value, service_url=url, token=token, min_delta=min_delta, max_age_days=max_age_days,
            performance_floor=performance_floor, drift_threshold=drift_threshold,
            label_delay_days=label_delay_days, budget=budget, mlflow_uri=mlflow,
        )  # fmt: skip
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"option {'.'.join(str(p) for p in first['loc'])}: {first['msg']}")
    except ValueError as exc:
        fail(f"option --every: {exc}")
    raise typer.Exit(command(policy, json_output, period))


@cli.command("promote")
def promote_command(
    models: ModelsDir = Path("models"), url: ServiceUrl = None, token: AdminToken = None
) -> None:
    """Finish a shadow deployment: the challenger becomes champion, the service reloads."""
    from training.deployment import DeployError, promote

    try:
        done = promote(models, url, token)
    except DeployError as exc:
        fail(str(exc))
    print(f"champion -> {done.champion} ({done.note})")


@cli.command("rollback")
def rollback_command(
    models: ModelsDir = Path("models"), url: ServiceUrl = None, token: AdminToken = None
) -> None:
    """Undo: drop the shadow challenger, or (without one) move the champion back to its previous version."""
    from training.deployment import DeployError, rollback

    try:
        done = rollback(models, url, token)
    except DeployError as exc:
        fail(str(exc))
    print(f"champion -> {done.champion} ({done.note})")


def main() -> None:
    """Console-script entry point."""
    cli()
