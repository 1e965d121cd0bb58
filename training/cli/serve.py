"""Service-side commands: serve, start (train a first model if needed, then serve), monitor (the drift job)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training.cli.root import ModelsDir, cli, fail

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
    budget: Annotated[int, typer.Option(min=1, help="settings per tree family if a model must be trained first")] = 3,
) -> None:
    """The main job: train on the embedded default data if MODELS has no champion yet, then serve it."""
    from app.errors import CommitRiskError
    from app.repository import ModelRepository
    from training.cli.train import run_training

    try:
        champion = ModelRepository(models).pointer()
    except CommitRiskError as exc:
        fail(exc.message)
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
    from app.monitoring.schedule import run_monitor
    from app.settings import Settings

    if not evidently_available():
        fail("evidently: not installed; pip install 'commitrisk[monitor]'")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        settings = Settings(models_dir=models)
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"COMMITRISK_{str(first['loc'][0]).upper()}: {first['msg'].removeprefix('Value error, ')}")
    run_monitor(settings, once)
