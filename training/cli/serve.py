"""Service-side commands: serve, start (the main job), monitor, replay, feedback import."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training.cli.root import AdminToken, ModelsDir, cli, fail

Host = Annotated[str, typer.Option(help="interface to bind")]
Port = Annotated[int, typer.Option(min=1, max=65535, help="TCP port")]
Workers = Annotated[int, typer.Option(min=1, help="uvicorn worker processes (each loads the model)")]


@cli.command("serve")
def serve_command(
    models: ModelsDir = Path("models"),
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Workers = 1,
) -> None:
    """Serve the champion model over HTTP (FastAPI + onnxruntime); settings from COMMITRISK_* variables."""
    from app.__main__ import ServeError, serve

    try:
        serve(models, host, port, workers)
    except ServeError as exc:
        fail(str(exc))


@cli.command("start")
def start_command(
    models: ModelsDir = Path("models"),
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Workers = 1,
    budget: Annotated[int, typer.Option(min=1, help="search budget if a model must be trained first")] = 12,
) -> None:
    """The main job: train on the embedded default data if MODELS has no champion yet, then serve it."""
    from training.cli.train import run_training
    from training.publish import PublishError, read_pointer

    try:
        champion = read_pointer(models)
    except PublishError as exc:
        fail(str(exc))
    if champion is None:
        try:
            from training.cli.output import Reporter
            from training.config import TrainConfig
        except ImportError:
            fail(f"{models}: no champion model, and training needs the 'train' extra: pip install 'commitrisk[train]'")
        reporter = Reporter(json_output=False)
        reporter.summary(run_training(TrainConfig(models_dir=models, budget=budget), reporter))
    serve_command(models=models, host=host, port=port, workers=workers)


@cli.command("monitor")
def monitor_command(
    models: ModelsDir = Path("models"),
    once: Annotated[bool, typer.Option(help="one drift run, then exit")] = False,
) -> None:
    """Run the drift job on its schedule outside the API (`monitor` extra); settings from COMMITRISK_*."""
    import logging

    from pydantic import ValidationError

    from app.monitoring.drift import evidently_available
    from app.monitoring.monitor import run_monitor
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


feedback_cli = typer.Typer(help="Send late labels (defect outcomes) to a service.", no_args_is_help=True)
cli.add_typer(feedback_cli, name="feedback")


@feedback_cli.command("import")
def feedback_import(
    file: Annotated[Path, typer.Argument(help="CSV with commit_id,buggy[,repository,fixed_by,labeled_at]")],
    url: Annotated[str, typer.Option(help="service base URL")],
    token: AdminToken = None,
) -> None:
    """Upsert labels from a CSV (the dataset format works) via POST /feedback; idempotent."""
    from training.clients.feedback import FeedbackError, import_feedback

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
    from training.clients.feedback import FeedbackError
    from training.clients.replay import run_replay

    try:
        s = run_replay(data, url, speed, label_delay_days, token, progress)
    except FeedbackError as exc:
        fail(str(exc))
    print(f"{data}: {s.predicted} predicted, {s.rejected} rejected {s.errors or ''}, "
          f"{s.labels_sent} labels sent, {s.labels_pending} still immature")  # fmt: skip
