"""Human (rich tables, text lines) and machine (JSON) output of the `commitrisk` commands."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from rich.console import Console
from rich.table import Table

from app.contract import EvaluationMetrics, FoldScore, ProtocolReport, ProtocolSummary

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
                "params": manifest.params,
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
                "protocol": None if manifest.protocol is None else manifest.protocol.model_dump(mode="json"),
                "explanation": "perturbation" if manifest.explanation is None else manifest.explanation.method,
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
        candidates = Table(title="Candidates (mean ROC AUC over the protocol folds before the test period)")
        for column in ("model", "inputs", "all folds", "forward", "leave one out", "validation", "fit s", "verdict"):
            candidates.add_column(column)
        chosen = (manifest.model_type, manifest.params.get("features", "raw"))
        for c in manifest.candidates:
            inputs = str(c.params.get("features", "raw"))
            mark = " ✔" if (c.name, inputs) == chosen else ""
            candidates.add_row(c.name + mark, inputs, _fmt(c.cv_roc_auc), _fmt(c.forward_roc_auc),
                               _fmt(c.leave_one_out_roc_auc), _fmt(c.validation_roc_auc), _fmt(c.fit_seconds),
                               c.verdict or "")  # fmt: skip
        self.out.print(candidates)
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in manifest.params.items())
        self.out.print(f"published recipe: {manifest.model_type} ({params})")
        if manifest.protocol is not None:
            self.out.print(f"choice: {manifest.protocol.choice}")
            for table in protocol_tables(manifest.protocol):
                self.out.print(table)
        self.out.print(
            metrics_table(
                "Pooled chronological metrics",
                {"validation": manifest.validation_metrics, "test": manifest.test_metrics},
            )
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


_PROTOCOL_TITLES = {"forward": "Per repository, forward in time", "leave_one_out": "Leave one repository out"}


def protocol_tables(report: ProtocolReport) -> list[Table]:
    """One table per protocol: each repository's figures beside the baseline's, the difference with its 95% CI."""
    tables = []
    for summary in (report.forward, report.leave_one_out):
        title = f"{_PROTOCOL_TITLES[summary.protocol]} (baseline: {report.baseline})"
        table = Table(title=title, caption=summary.note)
        for column in ("repository", "train", "test", "buggy", "ROC AUC", "baseline", "difference (95% CI)",
                       "PR AUC", "Recall@20%Effort", "Popt"):  # fmt: skip
            table.add_column(column, justify="left" if column == "repository" else "right")
        for fold in summary.folds:
            counts = (fold.repository, str(fold.train_rows), str(fold.test_rows), str(fold.buggy))
            if fold.skipped:
                table.add_row(*counts, f"not scored: {fold.skipped}")
                continue
            table.add_row(*counts, _fmt(fold.roc_auc), _fmt(fold.baseline_roc_auc), difference(fold),
                          _fmt(fold.pr_auc), _fmt(fold.recall_at_20_effort), _fmt(fold.popt))  # fmt: skip
        table.add_row("mean", "", "", "", _fmt(summary.mean_roc_auc), _fmt(summary.baseline_mean_roc_auc), "", "",
                      _fmt(summary.mean_recall_at_20_effort), _fmt(summary.mean_popt), style="bold")  # fmt: skip
        tables.append(table)
    return tables


def difference(fold: FoldScore) -> str:
    """`+0.012 (−0.010 to +0.034)`: ROC AUC minus the baseline's, with the paired 95% interval."""
    if fold.roc_auc is None or fold.baseline_roc_auc is None:
        return "—"
    diff = fold.roc_auc - fold.baseline_roc_auc
    if fold.difference_se is None:
        return f"{diff:+.3f}"
    return f"{diff:+.3f} ({diff - 1.96 * fold.difference_se:+.3f} to {diff + 1.96 * fold.difference_se:+.3f})"


def print_evaluation(result: ScoredVersion, json_output: bool) -> None:
    """`commitrisk evaluate`: per repository (95% CI of ROC AUC), their mean, pooled, and the version's own."""
    if json_output:
        print(json.dumps(result.as_json(), indent=2))
        return
    console = wide_console()
    console.print(
        f"version {result.version} on {result.rows_scored} mature rows ({result.immature_dropped} immature held back)"
    )
    table = Table(title="Per repository")
    for column in ("repository", "rows", "buggy", "ROC AUC (95% CI)", "PR AUC", "Recall@20%Effort", "Popt"):
        table.add_column(column, justify="left" if column == "repository" else "right")
    for r in result.repositories:
        if r.skipped:
            table.add_row(r.repository, str(r.rows), str(r.buggy), f"not scored: {r.skipped}")
            continue
        auc = _fmt(r.roc_auc)
        if r.roc_auc is not None and r.roc_auc_se is not None:
            auc += f" ({r.roc_auc - 1.96 * r.roc_auc_se:.3f}–{r.roc_auc + 1.96 * r.roc_auc_se:.3f})"
        table.add_row(r.repository, str(r.rows), str(r.buggy), auc, _fmt(r.pr_auc), _fmt(r.recall_at_20_effort),
                      _fmt(r.popt))  # fmt: skip
    means = [_fmt(result.mean(k)) for k in ("roc_auc", "pr_auc", "recall_at_20_effort", "popt")]
    table.add_row("mean of repositories", "", "", *means, style="bold")
    console.print(table)
    console.print(metrics_table("Metrics", {"this data, pooled": result.metrics, "own test period": result.own_test}))
    own = result.own_protocol
    if own is not None:
        console.print(
            _own_line("forward", own.forward) + "; " + _own_line("leave one repository out", own.leave_one_out)
        )


def _own_line(name: str, summary: ProtocolSummary) -> str:
    return f"the version's own {name} mean ROC AUC {_fmt(summary.mean_roc_auc)}"


def prediction_lines(prediction: dict[str, Any], sha: str, url: str | None = None) -> list[str]:
    """`commitrisk score`'s text: the verdict, one line per explaining factor, and the commit's web page."""
    probability = float(prediction["probability"])
    threshold = float(prediction["threshold"])
    lines = [
        f"commit {sha[:12]}: {prediction['risk_band']} risk (probability {probability:.2f}, "
        f"threshold {threshold:.2f}, model v{prediction.get('model_version', '?')})"
    ]
    for factor in prediction.get("factors") or []:
        reason = factor.get("reason") or factor.get("feature", "")
        lines.append(f"  - {reason}")
    if url and prediction.get("commit_id"):
        lines.append(f"  details: {url.rstrip('/')}/ui/commits/{quote(str(prediction['commit_id']), safe='')}")
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
