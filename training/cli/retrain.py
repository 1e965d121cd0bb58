"""Continuous-training command: retrain (triggers → challenger → blessing → deploy); pointers: cli/models.py."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from training.cli.root import AdminToken, ModelsDir, ServiceUrl, cli, fail, fail_options, note

if TYPE_CHECKING:
    from training.retrain.policy import RetrainPolicy


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

    from training.retrain.policy import RetrainPolicy
    from training.retrain.schedule import parse_every

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
        fail_options(exc)
    except ValueError as exc:
        fail(f"option --every: {exc}")
    raise typer.Exit(command(policy, json_output, period))


# Exit codes of one `commitrisk retrain` decision by action (every other action exits 0).
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
    import threading

    from training.retrain import decision
    from training.retrain.schedule import install_stop, run_every

    def once() -> dict[str, Any]:
        record = decision.run(policy, note if not json_output else (lambda _m: None))
        print(json.dumps(record, default=str) if json_output else describe(record), flush=True)
        return record

    if every is None:
        return EXIT_CODES.get(once()["action"], 0)
    stop = threading.Event()
    install_stop(stop, note)

    def tick() -> None:
        once()

    run_every(every, tick, stop, jitter=jitter, log=note)
    return 0
