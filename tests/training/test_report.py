"""training/report.py: real PNG files, metrics.json and one HTML page that references every figure."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.contract import CandidateScore, EvaluationMetrics, FoldScore, ProtocolReport, ProtocolSummary, RiskBands
from training import evaluate as ev
from training.report import FIGURES, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _data(seed: int = 0, n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    p = np.clip(rng.random(n) * 0.7 + y * 0.25, 0, 1)
    effort = rng.integers(0, 500, n).astype(float)
    return y, p, effort


def _write(directory: Path, y: np.ndarray, p: np.ndarray, effort: np.ndarray, **overrides: object) -> list[Path]:
    threshold = ev.choose_threshold(y, p)
    arguments: dict[str, object] = {
        "title": "commitrisk model 3 <logistic & co>",
        "test": ev.evaluate(y, p, effort, threshold),
        "validation": ev.evaluate(y, p, effort, threshold),
        "y_test": y,
        "p_test": p,
        "effort_test": effort,
        "threshold": threshold,
        "bands": ev.choose_bands(y, p, threshold),
        "importances": {"la": 0.4, "exp": -0.2, "entropy": 0.1},
        "candidates": [
            CandidateScore(name="logistic", validation_roc_auc=0.71, params={"C": 0.5}, fit_seconds=1.5),
            CandidateScore(name="random_forest", validation_roc_auc=0.74, cv_roc_auc=0.73, params={}, fit_seconds=9),
        ],
        "notes": ["random split: optimistic"],
    }
    arguments.update(overrides)
    return write_report(directory, **arguments)  # type: ignore[arg-type]


def test_writes_every_figure_as_a_valid_png(tmp_path: Path) -> None:
    y, p, effort = _data()
    paths = _write(tmp_path / "report", y, p, effort)
    assert [path.name for path in paths] == [*FIGURES, "metrics.json", "index.html"]
    for figure in FIGURES:
        path = tmp_path / "report" / figure
        width, height = _png_size(path)
        assert width >= 300 and height >= 300
        assert path.stat().st_size > 5_000  # something was drawn, not an empty canvas


def test_metrics_json_round_trips(tmp_path: Path) -> None:
    y, p, effort = _data()
    _write(tmp_path, y, p, effort)
    payload = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    test = EvaluationMetrics.model_validate(payload["test"])
    assert test == ev.evaluate(y, p, effort, payload["threshold"])
    assert RiskBands.model_validate(payload["bands"]).high == payload["threshold"]
    assert EvaluationMetrics.model_validate(payload["validation"]).rows == 400
    assert [c["name"] for c in payload["candidates"]] == ["logistic", "random_forest"]
    assert payload["notes"] == ["random split: optimistic"]
    assert list(payload["importances"]) == ["la", "exp", "entropy"]  # by absolute importance


def test_html_is_one_page_with_figures_metrics_candidates_and_notes(tmp_path: Path) -> None:
    y, p, effort = _data()
    _write(tmp_path, y, p, effort)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    test = ev.evaluate(y, p, effort, ev.choose_threshold(y, p))
    for figure in FIGURES:
        assert f'href="{figure}"' in page
    assert page.count("data:image/png;base64,") == len(FIGURES)  # embedded: the page stands alone
    assert "commitrisk model 3 &lt;logistic &amp; co&gt;" in page  # escaped title
    for label in ("ROC AUC", "Recall@20%Effort", "Effort@20%Recall", "Popt", "IFA", "MCC at threshold"):
        assert label in page
    assert f"{test.roc_auc:.4f}" in page and f"{test.popt:.4f}" in page
    assert "random_forest" in page and "random split: optimistic" in page
    assert "Rule: high: p &gt;=" in page


def test_per_repository_evidence_is_in_the_page_and_in_metrics_json(tmp_path: Path) -> None:
    y, p, effort = _data()
    fold = FoldScore(protocol="forward", repository="guice", train_rows=900, test_rows=247, buggy=33, roc_auc=0.71,
                     baseline_roc_auc=0.70, difference_se=0.005, popt=0.8, recall_at_20_effort=0.55)  # fmt: skip
    skipped = FoldScore(protocol="leave_one_out", repository="tiny", train_rows=10, test_rows=3, buggy=1,
                        skipped="only 3 mature commits to test (needs 30)")  # fmt: skip
    report = ProtocolReport(
        test_fraction=0.2, label_delay_days=90, baseline="plain <LR>", choice="kept the simplest",
        forward=ProtocolSummary(protocol="forward", folds=[fold], mean_roc_auc=0.71, baseline_mean_roc_auc=0.70),
        leave_one_out=ProtocolSummary(protocol="leave_one_out", folds=[skipped], note="nothing scored"),
    )  # fmt: skip
    _write(tmp_path, y, p, effort, protocol=report)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "Per repository, forward in time" in page and "Leave one repository out" in page
    assert "plain &lt;LR&gt;" in page and "+0.0100 (+0.0002 to +0.0198)" in page
    assert "not scored: only 3 mature commits to test (needs 30)" in page and "nothing scored" in page
    payload = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert ProtocolReport.model_validate(payload["protocol"]) == report
    _write(tmp_path / "none", y, p, effort)
    assert json.loads((tmp_path / "none" / "metrics.json").read_text())["protocol"] is None


def test_degenerate_test_sets_still_produce_every_file(tmp_path: Path) -> None:
    y = np.zeros(20, dtype=int)
    p = np.linspace(0, 1, 20)
    paths = _write(tmp_path, y, p, np.zeros(20), importances={}, candidates=[], notes=[])
    assert len(paths) == len(FIGURES) + 2
    for figure in FIGURES:
        _png_size(tmp_path / figure)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert "no candidates recorded" in page and "—" in page  # undefined metrics shown as a dash


def test_inputs_are_not_mutated(tmp_path: Path) -> None:
    y, p, effort = _data(1)
    copies = (y.copy(), p.copy(), effort.copy())
    _write(tmp_path, y, p, effort)
    for after, before in zip((y, p, effort), copies, strict=True):
        np.testing.assert_array_equal(after, before)


def test_bad_arrays_raise_before_anything_is_written(tmp_path: Path) -> None:
    y, p, effort = _data()
    with pytest.raises(ValueError, match="effort"):
        _write(tmp_path / "out", y, p, effort[:-1])
    metrics = ev.evaluate(y, p, effort, 0.5)
    with pytest.raises(ValueError, match="empty"):
        write_report(
            tmp_path / "out", title="t", test=metrics, validation=metrics, y_test=y[:0], p_test=p[:0],
            effort_test=effort[:0], threshold=0.5, bands=RiskBands(medium=0.2, high=0.5, rule="r"),
            importances={}, candidates=[], notes=[],
        )  # fmt: skip
    assert not (tmp_path / "out").exists()


def test_import_is_light() -> None:
    code = "import sys, training.report; print('matplotlib' in sys.modules, 'sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
