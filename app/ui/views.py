"""What each page shows, computed from the queries: reasons per listed commit, charts and their data tables,
one commit's explanation, the model versions, and the monitoring history. Pure reads; the templates print it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup
from sqlalchemy import Engine

from app.contract import CHALLENGER_POINTER, CHAMPION_POINTER, FEATURES, REPORT_DIR
from app.errors import CommitRiskError
from app.monitoring import retrain_log
from app.monitoring.commits import LoggedPrediction
from app.monitoring.snapshot import Computed
from app.monitoring.timeline import Outcomes, drift_runs
from app.monitoring.volume import BANDS, DAY, Volume, day_of
from app.services import Services
from app.shadow import shadow_report
from app.ui import charts
from app.ui.explanation import Explainer

CHART_DAYS = 30  # the repository chart's default range, ending today
MAX_CHART_DAYS = 366
MONITORING_DAYS = 90
DRIFT_RUNS = 12
AUDIT_RECORDS = 10
# The figures training/report.py writes, in reading order, with their captions (others follow by name).
FIGURES = {
    "roc.png": "ROC curve (test period)",
    "pr.png": "precision–recall (test period)",
    "calibration.png": "calibration",
    "effort.png": "recall over inspected effort",
    "importance.png": "feature importance",
}


@dataclass(frozen=True, slots=True)
class Chart:
    """An SVG chart and the same numbers as table rows (label, values by series)."""

    svg: Markup
    rows: list[tuple[str, dict[str, Any]]]
    caption: str


def _label(day: int) -> str:
    return datetime.fromtimestamp(day * DAY, UTC).strftime("%Y-%m-%d")


def band_chart(days: list[tuple[int, dict[str, int]]], what: str) -> Chart:
    """Rows per day stacked by band, with its table."""
    bars = [charts.Bar(_label(d), values, _label(d)[5:]) for d, values in days]
    caption = f"{what}, {_label(days[0][0])} to {_label(days[-1][0])} (UTC days)" if days else what
    svg = charts.stacked_bars(bars, BANDS, caption)
    return Chart(svg, [(b.label, b.values) for b in bars if sum(b.values.values())], caption)


def reasons(explainer: Explainer, rows: list[LoggedPrediction]) -> dict[int, list[str] | None]:
    """The top reasons of each listed prediction (by log id), as `/predict` gave them; None when its version is gone."""
    by_version: dict[int, list[LoggedPrediction]] = {}
    for row in rows:
        by_version.setdefault(row.model_version, []).append(row)
    found: dict[int, list[str] | None] = {}
    for version, group in by_version.items():
        texts = explainer.reasons(version, [r.features for r in group])
        for i, row in enumerate(group):
            found[row.id] = None if texts is None else texts[i]
    return found


def repository_chart(volume: Volume, repository: str, first: float | None, last: float | None) -> Chart:
    """The repository's predictions per day and band over the filter's days (default: the last 30 days), from the
    volume snapshot (as of its time)."""
    today = day_of(volume.as_of)
    end = day_of(last) if last is not None else today
    start = day_of(first) if first is not None else end - CHART_DAYS + 1
    if last is None and first is not None:
        end = max(start, min(start + CHART_DAYS * 3 - 1, today))
    start = max(start, end - MAX_CHART_DAYS + 1)
    return band_chart(volume.repository_days(repository, start, end), "Scored commits per day")


def commit_view(explainer: Explainer, newest: LoggedPrediction) -> dict[str, Any]:
    """The commit page's explanation, gauge, factor chart and metrics table (or why there is none)."""
    try:
        predictor = explainer.predictor(newest.model_version)
        explanation = explainer.explain(newest.model_version, newest.features)
    except CommitRiskError:
        # The message would name the server's models path; the page says what the person can act on.
        problem = f"model version {newest.model_version} is no longer loadable here, so the factors cannot be shown"
        metrics = [
            {"feature": f, "value": v, "median": None, "effect": None}
            for f, v in zip(FEATURES, newest.features, strict=True)
        ]
        return {"explanation": None, "manifest": None, "problem": problem, "metrics": metrics}
    manifest = predictor.manifest
    effects = {e.feature: e for d in explanation.dimensions for e in d.effects}
    groups = [
        charts.Group(d.name, d.score, [(e.feature, e.effect, e.reason) for e in d.effects])
        for d in explanation.dimensions
    ]
    dimension = {f: d.name for d in explanation.dimensions for f in (e.feature for e in d.effects)}
    stats = {f.name: f for f in manifest.features}
    return {
        "explanation": explanation,
        "manifest": manifest,
        "problem": None,
        "gauge": charts.gauge(newest.probability, manifest.threshold, manifest.bands.medium, manifest.bands.high),
        "factor_chart": charts.grouped_bars(groups, "effect of each metric on the probability, by dimension"),
        "metrics": [
            {
                "feature": name,
                "value": value,
                "median": stats[name].median,
                "effect": effects[name].effect,
                "dimension": dimension[name],
                "p99": stats[name].quantiles.get("p99"),
            }
            for name, value in zip(FEATURES, newest.features, strict=True)
        ],
    }


def _version_entry(
    services: Services, number: int, champion: int | None, challengers: tuple[int, ...]
) -> dict[str, Any]:
    repository = services.registry.repository
    roles = (["champion"] if number == champion else []) + (["challenger"] if number in challengers else [])
    try:
        manifest = repository.manifest(number)
    except CommitRiskError as exc:
        return {"version": number, "roles": roles, "manifest": None, "error": exc.message.rsplit(": ", 1)[-1]}
    report = repository.version_dir(number) / REPORT_DIR
    found = {p.name for p in report.glob("*.png")} if report.is_dir() else set()
    figures = [(name, FIGURES[name]) for name in FIGURES if name in found]
    figures += [(name, name[:-4]) for name in sorted(found - set(FIGURES))]
    return {"version": number, "roles": roles, "manifest": manifest, "error": None, "figures": figures}


@dataclass(frozen=True, slots=True)
class Serving:
    """What the worker a page was forwarded from knows and its page process does not (app/ui/process.py): the version
    it serves and its shadows' live counts (version → [scored, agreed])."""

    served: int | None
    live: dict[int, list[int]]


def models_view(services: Services, serving: Serving | None = None) -> dict[str, Any]:
    """Every version with its metrics and figures, the pointers, what this process (or the worker `serving` speaks
    for) serves, the shadows."""
    repository = services.registry.repository
    try:
        champion = repository.pointer(CHAMPION_POINTER)
        challengers = repository.pointer_list(CHALLENGER_POINTER)
        pointer_problem = None
    except CommitRiskError:
        champion, challengers, pointer_problem = None, (), "a pointer file cannot be read (see GET /models)"
    versions = [_version_entry(services, n, champion, challengers) for n in reversed(repository.versions())]
    served = services.registry.served
    version = None if served is None else served.champion.version
    shadows = shadow_report(services.shadow, services.monitoring.store.engine)
    if serving is not None:  # a page process scores nothing: the live figures are its worker's
        version = serving.served
        for shadow in shadows:
            scored, agreed = serving.live.get(shadow["version"], [0, 0])
            shadow["live"] = {"scored": scored, "agreement": agreed / scored if scored else None}
    return {
        "versions": versions,
        "champion": champion,
        "challengers": list(challengers),
        "pointer_problem": pointer_problem,
        "served": version,
        "shadows": shadows,
    }


def _weekly_mix(days: list[tuple[int, dict[str, int]]]) -> list[tuple[str, dict[str, int]]]:
    weeks: dict[str, dict[str, int]] = {}
    for d, values in days:
        monday = d - (d + 3) % 7
        week = weeks.setdefault(_label(monday), dict.fromkeys(BANDS, 0))
        for band, rows in values.items():
            week[band] += rows
    return [(label, values) for label, values in weeks.items() if sum(values.values())]


def monitoring_view(engine: Engine, volume: Computed[Volume], outcomes: Computed[Outcomes]) -> dict[str, Any]:
    """Volume and band mix, weekly labelled performance, drift per feature over the last runs, retrain decisions."""
    today = day_of(volume.value.as_of)
    # From the first logged day (two weeks at least), at most MONITORING_DAYS back.
    first = min(volume.value.by_day, default=today)
    days = volume.value.days(max(today - MONITORING_DAYS + 1, min(first, today - 13)), today)
    weeks = outcomes.value.weeks
    week_labels = [_label(day_of(w.start)) for w in weeks]
    performance = charts.lines(
        week_labels,
        {
            "ROC AUC": [w.metrics.roc_auc for w in weeks],
            "Recall@20%Effort": [w.metrics.recall_at_20_effort for w in weeks],
        },
        "weekly ROC AUC and Recall@20%Effort on labelled predictions",
    )
    runs = drift_runs(engine, DRIFT_RUNS)
    ok = [r for r in runs if r.status == "ok"]
    columns = [datetime.fromtimestamp(r.computed_at, UTC).strftime("%m-%d %H:%M") for r in ok]
    grid = [
        (
            name,
            [(r.features[name].drifted, f"{r.features[name].score:.2g}") if name in r.features else None for r in ok],
        )
        for name in FEATURES
    ]
    return {
        "volume": volume,
        "outcomes": outcomes,
        "volume_chart": band_chart(days, "Predictions per day by risk band"),
        "band_mix": _weekly_mix(days),
        "performance_chart": performance if weeks else None,
        "runs": runs,
        "drift_chart": charts.heatmap(columns, grid, "drift test per feature over the last runs") if ok else None,
        "audit": retrain_log.recent_audit(engine, AUDIT_RECORDS),
    }
