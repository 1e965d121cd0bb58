"""What the commands print: metric tables, the training summary (tables and JSON), evaluation, score lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from app.contract import EvaluationMetrics, FoldScore, ModelManifest, ProtocolReport, ProtocolSummary
from tests.support import build_model_version, prediction
from training.assessment import RepositoryScore, ScoredVersion
from training.cli.output import (
    Reporter,
    metrics_table,
    prediction_lines,
    print_evaluation,
    print_versions,
    protocol_tables,
    wide_console,
)
from training.pipeline import TrainOutcome


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> ModelManifest:
    """A real manifest, of a version published by the test helper."""
    version = build_model_version(tmp_path_factory.mktemp("output") / "models", 4)
    return ModelManifest.model_validate_json((version / "manifest.json").read_text())


def outcome(manifest: ModelManifest, promoted: bool = True) -> TrainOutcome:
    return TrainOutcome(manifest, rows_loaded=4600, rows_used=4500, duplicates_dropped=100, immature_dropped=40,
                        parity_max_abs_diff=2e-7, promoted=promoted, notes=["random split: optimistic"])  # fmt: skip


def rendered(table: object) -> str:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_a_console_that_is_not_a_terminal_is_wide() -> None:
    assert wide_console().width == 160  # pytest captures stdout: no terminal, so piped tables stay unwrapped
    assert wide_console(stderr=True).stderr


def test_metrics_table_has_a_row_per_metric_and_a_column_per_set() -> None:
    full = EvaluationMetrics(rows=900, buggy=120, roc_auc=0.81234, recall_at_20_effort=0.5, ifa=3)
    empty = EvaluationMetrics(rows=0, buggy=0)
    text = rendered(metrics_table("Metrics", {"validation": full, "test": empty}))
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") == 4}
    assert "┃ metric " in text and "┃ validation ┃ test ┃" in text
    assert list(lines)[:4] == ["rows", "buggy", "ROC AUC", "PR AUC"] and len(lines) == 13
    assert [cell.strip() for cell in lines["ROC AUC"].split("│")[2:4]] == ["0.812", "—"]  # 3 decimals; None → —
    assert [cell.strip() for cell in lines["IFA"].split("│")[2:4]] == ["3", "—"]
    assert "Recall@20%Effort" in lines and "Popt" in lines


def test_the_json_summary_is_one_object_on_stdout(manifest: ModelManifest, capsys: pytest.CaptureFixture[str]) -> None:
    Reporter(json_output=True).summary(outcome(manifest))
    out = json.loads(capsys.readouterr().out)
    assert (out["version"], out["promoted"], out["model_type"]) == (4, True, "logreg")
    assert (out["rows_loaded"], out["rows_used"], out["duplicates_dropped"], out["immature_dropped"]) == (
        4600, 4500, 100, 40
    )  # fmt: skip
    assert out["test_metrics"] == manifest.test_metrics.model_dump(mode="json")
    assert out["notes"] == ["random split: optimistic"] and out["seconds"] >= 0


def test_the_table_summary_names_data_candidates_metrics_and_the_version(
    manifest: ModelManifest, capsys: pytest.CaptureFixture[str]
) -> None:
    reporter = Reporter(json_output=False)
    with reporter.progress() as report:
        report("searching logreg")
    reporter.summary(outcome(manifest, promoted=False))
    captured = capsys.readouterr()
    assert "searching logreg" in captured.err  # progress goes to stderr, the summary to stdout
    out = captured.out
    assert "duplicate commit ids dropped" in out and "logreg ✔" in out
    assert "threshold 0.500; bands low < 0.300 ≤ medium < 0.600 ≤ high" in out
    assert "note: random split: optimistic" in out
    assert "published version 4 (logreg, not promoted) in " in out


def test_evaluation_prints_each_repository_their_mean_and_the_pooled_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = EvaluationMetrics(rows=300, buggy=40, roc_auc=0.7)
    own = EvaluationMetrics(rows=200, buggy=30, roc_auc=0.75)
    repositories = [
        RepositoryScore("kafka", 250, 35, roc_auc=0.72, roc_auc_se=0.05, pr_auc=0.3, recall_at_20_effort=0.5, popt=0.8),
        RepositoryScore("mini", 12, 2, skipped="only 12 mature commits (needs 30)"),
        RepositoryScore("zk", 38, 3, roc_auc=0.64, roc_auc_se=None, pr_auc=0.2, recall_at_20_effort=0.3, popt=0.7),
    ]
    result = ScoredVersion(2, 300, 12, metrics, own, repositories)
    print_evaluation(result, json_output=True)
    printed = json.loads(capsys.readouterr().out)
    assert printed == result.as_json() and printed["repositories"][1]["skipped"].startswith("only 12")
    assert printed["repository_means"]["roc_auc"] == pytest.approx(0.68)  # the skipped one is not averaged
    print_evaluation(result, json_output=False)
    out = capsys.readouterr().out
    assert out.startswith("version 2 on 300 mature rows (12 immature held back)")
    assert "0.720 (0.622–0.818)" in out and "not scored: only 12 mature commits (needs 30)" in out
    assert "mean of repositories" in out and "0.680" in out
    assert "this data, pooled" in out and "own test period" in out and "0.700" in out and "0.750" in out


def test_protocol_tables_put_each_repository_beside_the_baseline() -> None:
    folds = [
        FoldScore(protocol="forward", repository="a", train_rows=900, test_rows=200, buggy=30, roc_auc=0.75,
                  baseline_roc_auc=0.74, difference_se=0.01, recall_at_20_effort=0.5, popt=0.8),
        FoldScore(protocol="forward", repository="b", train_rows=0, test_rows=8, buggy=1,
                  skipped="only 8 mature commits to test (needs 30)"),
    ]  # fmt: skip
    forward = ProtocolSummary(protocol="forward", folds=folds, mean_roc_auc=0.75, baseline_mean_roc_auc=0.74)
    alone = ProtocolSummary(protocol="leave_one_out", folds=[], note="one repository only")
    report = ProtocolReport(test_fraction=0.2, label_delay_days=90, baseline="plain", forward=forward,
                            leave_one_out=alone, choice="why")  # fmt: skip
    first, second = (rendered(t) for t in protocol_tables(report))
    assert "Per repository, forward in time (baseline: plain)" in first
    assert "+0.010 (-0.010 to +0.030)" in first and "not scored: only 8 mature commits to test" in first
    assert "mean" in first and "0.750" in first and "0.740" in first
    assert "Leave one repository out" in second and "one repository only" in second


def test_prediction_lines_give_the_verdict_then_one_line_per_factor() -> None:
    answer = prediction("high") | {
        "factors": [{"feature": "la", "reason": "la = 120 (median 10) raises risk"}, {"feature": "exp"}]
    }
    assert prediction_lines(answer, "ab" * 20) == [
        "commit abababababab: high risk (probability 0.90, threshold 0.40, model v3)",
        "  - la = 120 (median 10) raises risk",
        "  - exp",  # a factor without a reason names its feature
    ]
    bare = {"risk_band": "low", "probability": 0.05, "threshold": 0.4, "factors": None}
    assert prediction_lines(bare, "cd" * 20) == [
        "commit cdcdcdcdcdcd: low risk (probability 0.05, threshold 0.40, model v?)"
    ]


def test_prediction_lines_end_with_the_commits_web_page() -> None:
    answer = prediction("high") | {"commit_id": "org/app_" + "ab" * 20}
    lines = prediction_lines(answer, "ab" * 20, "http://ci.example:8000/")
    assert lines[-1] == f"  details: http://ci.example:8000/ui/commits/org%2Fapp_{'ab' * 20}"
    assert prediction_lines(answer | {"commit_id": None}, "ab" * 20, "http://x")[-1].startswith("  - ")


def test_versions_are_listed_with_their_roles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "models"
    build_model_version(models, 1)
    build_model_version(models, 2, kind="forest", strength=0.2, point=False)
    print_versions(models, json_output=True)
    listing = json.loads(capsys.readouterr().out)
    assert {v["version"]: v["roles"] for v in listing["versions"]} == {1: ["champion"], 2: []}
    print_versions(models, json_output=False)
    out = capsys.readouterr().out
    assert f"Model versions in {models}" in out and "champion" in out and "forest" in out
