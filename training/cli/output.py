"""Human (rich tables, text lines) and machine (JSON) output of the `commitrisk` commands."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from app.contract import EvaluationMetrics

if TYPE_CHECKING:
    from training.assessment import ScoredVersion
    from training.pipeline import TrainOutcome

METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "brier": "Brier",
    "f1": "F1",
    "precision": "precision",
    "recall": "recall",
    "mcc": "MCC",
    "recall_at_20_effort": "Recall@20%Effort",
    "effort_at_20_recall": "Effort@20%Recall",
    "popt": "Popt",
    "ifa": "IFA",
}


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def wide_console(stderr: bool = False) -> Console:
    """A console that is 160 columns wide when not a terminal, so piped tables and logs stay unwrapped."""
    console = Console(stderr=stderr, log_path=False)
    return console if console.is_terminal else Console(stderr=stderr, log_path=False, width=160)


def metrics_table(title: str, columns: dict[str, EvaluationMetrics]) -> Table:
    """One row per metric, one column per labelled set."""
    table = Table(title=title)
    table.add_column("metric")
    for name in columns:
        table.add_column(name, justify="right")
    rows = [("rows", "rows"), ("buggy", "buggy"), *METRIC_LABELS.items()]
    for key, label in rows:
        table.add_row(label, *(_fmt(getattr(m, key)) for m in columns.values()))
    return table


class Reporter:
    """Progress lines on stderr while a run works; a summary on stdout when it ends."""

    def __init__(self, json_output: bool) -> None:
        self.json_output = json_output
        self.err = wide_console(stderr=True)
        self.out = wide_console()
        self.started = time.perf_counter()

    @contextlib.contextmanager
    def progress(self) -> Iterator[Callable[[str], None]]:
        """A callable that reports one stage; a spinner shows the current stage on a terminal."""
        with self.err.status("starting…") as status:

            def report(message: str) -> None:
                elapsed = time.perf_counter() - self.started
                self.err.log(f"[{elapsed:6.1f}s] {message}")
                status.update(message)

            yield report

    def summary(self, outcome: TrainOutcome) -> None:
        """Print what the run did: rows, candidates, chosen model, test metrics, version."""
        manifest = outcome.manifest
        if self.json_output:
            payload = {
                "version": manifest.version,
                "promoted": outcome.promoted,
                "model_type": manifest.model_type,
                "rows_loaded": outcome.rows_loaded,
                "rows_used": outcome.rows_used,
                "duplicates_dropped": outcome.duplicates_dropped,
                "immature_dropped": outcome.immature_dropped,
                "window": manifest.window.model_dump(mode="json"),
                "candidates": [c.model_dump(mode="json") for c in manifest.candidates],
                "threshold": manifest.threshold,
                "bands": manifest.bands.model_dump(mode="json"),
                "validation_metrics": manifest.validation_metrics.model_dump(mode="json"),
                "test_metrics": manifest.test_metrics.model_dump(mode="json"),
                "parity_max_abs_diff": outcome.parity_max_abs_diff,
                "seconds": round(time.perf_counter() - self.started, 2),
                "notes": outcome.notes,
            }
            print(json.dumps(payload, indent=2))
            return
        window = manifest.window
        rows = Table(title="Data")
        rows.add_column("rows")
        rows.add_column("count", justify="right")
        rows.add_row("loaded", str(outcome.rows_loaded))
        rows.add_row("duplicate commit ids dropped", str(outcome.duplicates_dropped))
        rows.add_row(f"immature (newest {window.label_delay_days:g} days) held back", str(outcome.immature_dropped))
        rows.add_row(f"train ({window.split})", str(window.train_rows))
        rows.add_row("validation", str(window.validation_rows))
        rows.add_row(f"test {window.test_start:%Y-%m-%d} – {window.test_end:%Y-%m-%d}", str(window.test_rows))
        self.out.print(rows)
        candidates = Table(title="Candidates (chosen on validation ROC AUC)")
        for column in ("model", "cv ROC AUC", "validation ROC AUC", "fit s", "params"):
            candidates.add_column(column)
        for c in manifest.candidates:
            mark = " ✔" if c.name == manifest.model_type else ""
            params = ", ".join(f"{k}={_fmt(v)}" for k, v in c.params.items())
            candidates.add_row(
                c.name + mark, _fmt(c.cv_roc_auc), _fmt(c.validation_roc_auc), _fmt(c.fit_seconds), params
            )
        self.out.print(candidates)
        self.out.print(
            metrics_table("Metrics", {"validation": manifest.validation_metrics, "test": manifest.test_metrics})
        )
        bands = manifest.bands
        self.out.print(
            f"threshold {manifest.threshold:.3f}; bands low < {bands.medium:.3f} ≤ medium < {bands.high:.3f} ≤ high"
        )
        for note in outcome.notes:
            self.out.print(f"[yellow]note:[/] {note}")
        role = "champion" if outcome.promoted else "not promoted"
        self.out.print(
            f"published version {manifest.version} ({manifest.model_type}, {role}) "
            f"in {time.perf_counter() - self.started:.1f}s"
        )


def print_evaluation(result: ScoredVersion, json_output: bool) -> None:
    """Metrics of `commitrisk evaluate`."""
    if json_output:
        print(json.dumps(result.as_json(), indent=2))
        return
    console = wide_console()
    console.print(
        f"version {result.version} on {result.rows_scored} mature rows ({result.immature_dropped} immature held back)"
    )
    console.print(metrics_table("Metrics", {"this data": result.metrics, "own test period": result.own_test}))


def prediction_lines(prediction: dict[str, Any], sha: str) -> list[str]:
    """`commitrisk score`'s text: the verdict, then one line per explaining factor."""
    probability = float(prediction["probability"])
    threshold = float(prediction["threshold"])
    lines = [
        f"commit {sha[:12]}: {prediction['risk_band']} risk (probability {probability:.2f}, "
        f"threshold {threshold:.2f}, model v{prediction.get('model_version', '?')})"
    ]
    for factor in prediction.get("factors") or []:
        reason = factor.get("reason") or factor.get("feature", "")
        lines.append(f"  - {reason}")
    return lines


def print_versions(models_dir: Path, json_output: bool) -> None:
    """`commitrisk models list`."""
    from training.assessment import list_versions

    listing = list_versions(models_dir)
    if json_output:
        print(json.dumps(listing, indent=2))
        return
    table = Table(title=f"Model versions in {models_dir}")
    for column in ("version", "role", "created", "model", "test ROC AUC", "test rows", "train window"):
        table.add_column(column)
    for entry in listing["versions"]:
        table.add_row(
            str(entry["version"]),
            ", ".join(entry["roles"]),
            entry.get("created_at", "")[:19],
            entry.get("model_type", entry.get("error", "")),
            _fmt(entry.get("test_roc_auc")),
            _fmt(entry.get("test_rows")),
            entry.get("window", ""),
        )
    wide_console().print(table)
