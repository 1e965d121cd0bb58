"""The evaluation report of one model version: PNG figures, metrics.json and a one-page index.html.

matplotlib is imported inside the functions (Agg canvas, no pyplot global state) so importing this module
stays cheap and thread-safe.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.contract import CandidateScore, EvaluationMetrics, ProtocolReport, ProtocolSummary, RiskBands
from training import evaluate as ev

if TYPE_CHECKING:
    from matplotlib.axes import Axes

FIGURES = ("roc.png", "pr.png", "calibration.png", "effort.png", "importance.png")
METRICS_FILE = "metrics.json"
INDEX_FILE = "index.html"
_CAPTIONS = {
    "roc.png": "ROC curve on the test period (dot: the decision threshold)",
    "pr.png": "Precision-recall curve on the test period (dashed: share of buggy commits)",
    "calibration.png": "Reliability: observed buggy rate per probability bin, with bin counts",
    "effort.png": "Cumulative recall over inspected effort (la + ld), ranked by p / effort",
    "importance.png": "Feature importances of the chosen model",
}
_METRIC_LABELS = {
    "rows": "rows", "buggy": "buggy commits", "roc_auc": "ROC AUC", "pr_auc": "PR AUC (average precision)",
    "brier": "Brier score", "f1": "F1 at threshold", "precision": "precision at threshold",
    "recall": "recall at threshold", "mcc": "MCC at threshold", "recall_at_20_effort": "Recall@20%Effort",
    "effort_at_20_recall": "Effort@20%Recall", "popt": "Popt", "ifa": "IFA (clean before first buggy)",
}  # fmt: skip


def _save(path: Path, draw: Callable[[Any], None], size: tuple[float, float] = (5.0, 4.2)) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    draw(figure)
    figure.savefig(path, format="png", metadata={"Software": None})
    return path


def _undefined(ax: Axes, why: str) -> None:
    ax.text(0.5, 0.5, why, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _both_classes(y: np.ndarray) -> bool:
    return 0 < int(np.sum(y)) < y.size


def _draw_roc(y: np.ndarray, p: np.ndarray, threshold: float, auc: float | None) -> Callable[[Any], None]:
    def draw(figure: Any) -> None:
        ax = figure.add_subplot()
        ax.set_title("ROC (test)")
        if not _both_classes(y):
            return _undefined(ax, "undefined: the test set has one class only")
        fpr, tpr = ev.roc_points(y, p)
        ax.plot(fpr, tpr, label=f"model (AUC {auc:.3f})" if auc is not None else "model")
        ax.plot([0, 1], [0, 1], ls=":", color="grey", label="random")
        pred = p >= threshold
        ax.plot(np.mean(pred[y == 0]), np.mean(pred[y == 1]), "o", color="C3", label=f"p >= {threshold:.3f}")
        ax.set(xlabel="false positive rate", ylabel="true positive rate (recall)", xlim=(0, 1), ylim=(0, 1.01))
        ax.legend(loc="lower right")

    return draw


def _draw_pr(y: np.ndarray, p: np.ndarray, threshold: float, ap: float | None) -> Callable[[Any], None]:
    def draw(figure: Any) -> None:
        ax = figure.add_subplot()
        ax.set_title("Precision-recall (test)")
        if not y.any():
            return _undefined(ax, "undefined: no buggy commits in the test set")
        recall, precision = ev.pr_points(y, p)
        ax.step(recall, precision, where="post", label=f"model (AP {ap:.3f})" if ap is not None else "model")
        ax.axhline(np.mean(y), ls="--", color="grey", label=f"buggy share {np.mean(y):.3f}")
        pred = p >= threshold
        if pred.any():
            ax.plot(np.mean(pred[y == 1]), np.mean(y[pred]), "o", color="C3", label=f"p >= {threshold:.3f}")
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        ax.legend(loc="upper right")

    return draw


def _draw_calibration(y: np.ndarray, p: np.ndarray, brier: float | None) -> Callable[[Any], None]:
    def draw(figure: Any) -> None:
        top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
        mean_p, rate, counts = ev.calibration_bins(y, p)
        top.plot([0, 1], [0, 1], ls=":", color="grey", label="perfectly calibrated")
        top.plot(mean_p, rate, "o-", label=f"model (Brier {brier:.3f})" if brier is not None else "model")
        for x, r, n in zip(mean_p, rate, counts, strict=True):
            top.annotate(f"{int(n)}", (x, r), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
        top.set(title="Calibration (test, 10 bins)", ylabel="observed buggy rate", ylim=(0, 1.05))
        top.legend(loc="upper left")
        bottom.bar(mean_p, counts, width=0.05, color="C0")
        bottom.set(xlabel="mean predicted probability", ylabel="commits", xlim=(0, 1))

    return draw


def _draw_effort(y: np.ndarray, p: np.ndarray, effort: np.ndarray, m: EvaluationMetrics) -> Callable[[Any], None]:
    def draw(figure: Any) -> None:
        ax = figure.add_subplot()
        ax.set_title("Effort-aware ranking (test)")
        if not y.any():
            return _undefined(ax, "undefined: no buggy commits in the test set")
        popt_text = f", Popt {m.popt:.3f}" if m.popt is not None else ""
        ax.plot(*ev.effort_curve(y, p, effort), label=f"model{popt_text}", lw=2)
        ax.plot(*ev.cumulative_recall(y, effort, ev.optimal_ranking(y, effort)), label="optimal", color="C2")
        ax.plot(*ev.cumulative_recall(y, effort, ev.worst_ranking(y, effort)), label="worst", color="C3")
        ax.plot([0, 1], [0, 1], ls=":", color="grey", label="random")
        at20 = f" (recall {m.recall_at_20_effort:.3f})" if m.recall_at_20_effort is not None else ""
        ax.axvline(ev.EFFORT_SHARE, ls="--", color="black", lw=1, label=f"20% effort{at20}")
        ax.set(xlabel="share of effort inspected (la + ld)", ylabel="share of buggy commits found")
        ax.set(xlim=(0, 1), ylim=(0, 1.01))
        ax.legend(loc="lower right")

    return draw


def _draw_importance(importances: dict[str, float]) -> Callable[[Any], None]:
    def draw(figure: Any) -> None:
        ax = figure.add_subplot()
        ax.set_title("Feature importance")
        if not importances:
            return _undefined(ax, "no feature importances were given")
        ranked = sorted(importances.items(), key=lambda kv: (abs(kv[1]), kv[0]))
        names, values = [k for k, _ in ranked], [v for _, v in ranked]
        ax.barh(names, values, color=["C0" if v >= 0 else "C3" for v in values])
        ax.axvline(0, color="black", lw=0.8)
        ax.set(xlabel="importance")

    return draw


def _fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


_TITLES = {"forward": "Per repository, forward in time", "leave_one_out": "Leave one repository out"}


def _protocol_html(report: ProtocolReport | None) -> str:
    """One table per protocol: the model beside the baseline per repository, the difference with its 95% CI."""
    if report is None:
        return "<p>No per-repository evidence (random split).</p>"
    e = html.escape
    head = ("<tr><th>repository</th><th>train rows</th><th>test rows</th><th>buggy</th><th>ROC AUC</th>"
            "<th>baseline ROC AUC</th><th>difference (95% CI)</th><th>PR AUC</th><th>Recall@20%Effort</th>"
            "<th>Popt</th></tr>")  # fmt: skip

    def table(summary: ProtocolSummary) -> str:
        rows = []
        for f in summary.folds:
            first = _cells(f.repository, f.train_rows, f.test_rows, f.buggy)
            if f.skipped:
                rows.append(f'<tr>{first}<td colspan="6">not scored: {e(f.skipped)}</td></tr>')
                continue
            rest = _cells(f.roc_auc, f.baseline_roc_auc, _difference(f), f.pr_auc, f.recall_at_20_effort, f.popt)
            rows.append(f"<tr>{first}{rest}</tr>")
        means = (summary.mean_roc_auc, summary.baseline_mean_roc_auc, "", "", summary.mean_recall_at_20_effort)
        rows.append(f"<tr>{_cells('mean', '', '', '', *means, summary.mean_popt)}</tr>")
        note = f"<p>{e(summary.note)}</p>" if summary.note else ""
        return f"<h3>{_TITLES[summary.protocol]}</h3>{note}<table>{head}{''.join(rows)}</table>"

    intro = (f"<p>Baseline: {e(report.baseline)}, fitted on the same folds. Forward test: each repository's newest "
             f"{report.test_fraction:.0%} of its mature commits. Choice: {e(report.choice)}.</p>")  # fmt: skip
    return intro + table(report.forward) + table(report.leave_one_out)


def _cells(*values: object) -> str:
    return "".join(f"<td>{_fmt(v)}</td>" for v in values)


def _difference(fold: object) -> str:
    roc, base, se = (getattr(fold, k) for k in ("roc_auc", "baseline_roc_auc", "difference_se"))
    if roc is None or base is None:
        return "—"
    diff = roc - base
    return f"{diff:+.4f}" if se is None else f"{diff:+.4f} ({diff - 1.96 * se:+.4f} to {diff + 1.96 * se:+.4f})"


def _html(
    title: str, test: EvaluationMetrics, validation: EvaluationMetrics, threshold: float, bands: RiskBands,
    candidates: list[CandidateScore], notes: list[str], figures: list[Path], protocol: ProtocolReport | None,
) -> str:  # fmt: skip
    e = html.escape
    tv, vv = test.model_dump(), validation.model_dump()
    metric_rows = "".join(
        f"<tr><td>{e(label)}</td><td>{_fmt(tv[k])}</td><td>{_fmt(vv[k])}</td></tr>"
        for k, label in _METRIC_LABELS.items()
    )
    candidate_rows = (
        "".join(
            f"<tr><td>{e(c.name)}</td><td>{_fmt(c.cv_roc_auc)}</td><td>{_fmt(c.forward_roc_auc)}</td>"
            f"<td>{_fmt(c.leave_one_out_roc_auc)}</td><td>{_fmt(c.validation_roc_auc)}</td>"
            f"<td>{c.fit_seconds:.1f}</td><td>{_fmt(c.verdict)}</td>"
            f"<td><code>{e(json.dumps(c.params, sort_keys=True))}</code></td></tr>"
            for c in candidates
        )
        or '<tr><td colspan="8">no candidates recorded</td></tr>'
    )
    note_items = "".join(f"<li>{e(n)}</li>" for n in notes) or "<li>none</li>"
    images = "".join(
        f'<figure><a href="{f.name}"><img alt="{f.name}" src="data:image/png;base64,'
        f'{base64.b64encode(f.read_bytes()).decode("ascii")}"></a>'
        f'<figcaption>{e(_CAPTIONS[f.name])} — <a href="{f.name}">{f.name}</a></figcaption></figure>'
        for f in figures
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.3em .7em;text-align:left}}
th{{background:#f3f3f3}}figure{{display:inline-block;width:48%;margin:.5em 0;vertical-align:top}}
img{{width:100%}}figcaption{{font-size:.85em;color:#555}}.notes li{{color:#8a4b00}}</style></head><body>
<h1>{e(title)}</h1>
<h2>Notes</h2><ul class="notes">{note_items}</ul>
<h2>Metrics</h2><p>Decision threshold: <b>{threshold:.4f}</b> (p &ge; threshold predicts buggy).</p>
<table><tr><th>metric</th><th>test</th><th>validation</th></tr>{metric_rows}</table>
<h2>Risk bands</h2><p>low: p &lt; {bands.medium:.4f} · medium: {bands.medium:.4f} &le; p &lt; {bands.high:.4f}
· high: p &ge; {bands.high:.4f}</p><p>Rule: {e(bands.rule)}</p>
<h2>Per-repository evidence</h2>{_protocol_html(protocol)}
<h2>Candidates (chosen on protocol folds before the test period)</h2>
<table><tr><th>model</th><th>mean fold ROC AUC</th><th>forward</th><th>leave one out</th>
<th>validation ROC AUC</th><th>fit seconds</th><th>verdict</th><th>params</th></tr>
{candidate_rows}</table>
<h2>Figures</h2>{images}
<p><a href="{METRICS_FILE}">{METRICS_FILE}</a> holds these numbers.</p>
</body></html>
"""


def write_report(
    directory: Path, *, title: str, test: EvaluationMetrics, validation: EvaluationMetrics,
    y_test: np.ndarray, p_test: np.ndarray, effort_test: np.ndarray, threshold: float, bands: RiskBands,
    importances: dict[str, float], candidates: list[CandidateScore], notes: list[str],
    protocol: ProtocolReport | None = None,
) -> list[Path]:  # fmt: skip
    """Write the five figures, metrics.json and index.html into `directory` (created); return their paths."""
    y, p = ev.check_inputs(y_test, p_test)
    effort = np.asarray(effort_test, dtype=np.float64)
    ev.effective_effort(effort, y.size)
    directory.mkdir(parents=True, exist_ok=True)
    drawers = (
        _draw_roc(y, p, threshold, test.roc_auc),
        _draw_pr(y, p, threshold, test.pr_auc),
        _draw_calibration(y, p, test.brier),
        _draw_effort(y, p, effort, test),
        _draw_importance(importances),
    )
    figures = [_save(directory / name, draw) for name, draw in zip(FIGURES, drawers, strict=True)]
    metrics = directory / METRICS_FILE
    payload = {
        "title": title,
        "threshold": threshold,
        "bands": bands.model_dump(),
        "test": test.model_dump(),
        "validation": validation.model_dump(),
        "candidates": [c.model_dump() for c in candidates],
        "importances": dict(sorted(importances.items(), key=lambda kv: -abs(kv[1]))),
        "notes": list(notes),
        "protocol": None if protocol is None else protocol.model_dump(mode="json"),
        "figures": list(FIGURES),
    }
    metrics.write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    index = directory / INDEX_FILE
    page = _html(title, test, validation, threshold, bands, candidates, notes, figures, protocol)
    index.write_text(page, encoding="utf-8")
    return [*figures, metrics, index]
