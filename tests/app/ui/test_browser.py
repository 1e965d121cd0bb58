"""The web pages in a real browser: a real `commitrisk serve` (uvicorn) with real predictions posted through
/predict and labels through /feedback, read by Debian's chromium with JavaScript disabled.

Every page loads with no console error and no failed request; the repository page lists exactly the posted
commits in order; the band filter and the SHA search narrow it; the commit page shows the 15 metrics and the
factors the JSON answer gave; every chart is SVG with data; each page leaves a screenshot in tmp_path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sqlalchemy import create_engine

from app.contract import FEATURES
from app.monitoring import retrain_log
from tests.support import ADMIN_TOKEN, private_copy, wait_for

pytestmark = pytest.mark.slow
REPO = "org/app"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Visit:
    """One browser page that records console errors, failed requests and error responses while it browses."""

    def __init__(self, page: Any, base: str, shots: Path) -> None:
        self.page, self.base, self.shots = page, base, shots
        self.problems: list[str] = []
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed request: {r.url} {r.failure}"))
        page.on("response", lambda r: self.problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)

    def open(self, path: str, shot: str) -> Any:
        """Load `path`, wait for every request, screenshot it; no problem may have been recorded."""
        response = self.page.goto(self.base + path, wait_until="networkidle")
        self.screenshot(shot)
        assert response is not None and response.status == 200, path
        assert self.problems == [], self.problems
        return response

    def screenshot(self, name: str) -> None:
        """A full-page PNG in the test's output folder (the pages are asserted elsewhere: this is the artefact)."""
        path = str(self.shots / f"{name}.png")
        try:
            self.page.screenshot(path=path, full_page=True, animations="disabled", timeout=10_000)
        except PlaywrightTimeout:  # headless chromium now and then never answers a capture (seen once in CI)
            self.page.screenshot(path=path, full_page=True, animations="disabled", timeout=30_000)

    def listed(self) -> list[str]:
        """The commit ids of the repository page's rows, top to bottom."""
        return self.page.eval_on_selector_all(
            "#commit-list tbody tr", "rows => rows.map(r => r.dataset.commitId)"
        ) if self.page.query_selector("#commit-list") else []  # fmt: skip


def chart_values(page: Any, selector: str) -> list[float]:
    """`data-value` of every data element of the charts matching `selector`."""
    return [float(v) for v in page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.value)")]


@pytest.fixture(scope="module")
def served(
    trained_models: Path, tmp_path_factory: pytest.TempPathFactory, synthetic_commits_dir: Path
) -> Iterator[dict[str, Any]]:
    """A real server on a copy of the trained models (v2 in shadow), 12 commits posted one by one, labels for 6."""
    import subprocess
    import sys

    from tests.support import REPO as ROOT
    from tests.support import free_port, stop_group

    work = tmp_path_factory.mktemp("ui-browser")
    models = private_copy(trained_models, work)
    (models / "challenger").write_text("2\n")
    port = free_port()
    database = work / "log.db"
    env = {
        **__import__("os").environ, "COMMITRISK_ADMIN_TOKEN": ADMIN_TOKEN, "COMMITRISK_DATABASE_URL": f"sqlite:///{database}",
        "COMMITRISK_LOG_FLUSH_SECONDS": "0.05", "COMMITRISK_UI_REFRESH_SECONDS": "0",
        "COMMITRISK_UI_LABELS_REFRESH_SECONDS": "0", "COMMITRISK_DRIFT_MIN_ROWS": "20",
        "COMMITRISK_DRIFT_INTERVAL_SECONDS": "86400",
        # Pages through the page process (the default), at the tests' own priority: niced below the other test
        # processes of a busy CI machine it could starve past the browser's timeouts (its niceness: test_process.py).
        "COMMITRISK_UI_PROCESS_NICE": "0",
    }  # fmt: skip
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = open(work / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(
        [sys.executable, "-m", "training", "serve", "--models", str(models), "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: httpx.get(f"{url}/health/ready").status_code == 200, "the server", 90)
        frame = pd.read_csv(synthetic_commits_dir / "alpha.csv").iloc[:12]
        answers = []
        for i, row in enumerate(frame.itertuples(index=False)):
            body = {name: float(getattr(row, name)) for name in FEATURES}
            body |= {"commit_id": f"{REPO}_{i:02d}{row.commit_id[-10:]}", "repository": REPO}
            answer = httpx.post(f"{url}/predict", json=body, timeout=30)
            assert answer.status_code == 200, answer.text
            answers.append(answer.json() | {"sent": body})
        # A second repository by batch, enough rows for a drift run.
        other = pd.read_csv(synthetic_commits_dir / "beta.csv").iloc[:60]
        batch = [{n: float(r[n]) for n in FEATURES} | {"commit_id": f"lib_{k}", "repository": "org/lib"}
                 for k, (_, r) in enumerate(other.iterrows())]  # fmt: skip
        assert httpx.post(f"{url}/predict/batch", json={"commits": batch}, timeout=60).status_code == 200
        labels = [{"commit_id": a["commit_id"], "buggy": i % 2 == 0} for i, a in enumerate(answers[:6])]
        labels += [{"commit_id": c["commit_id"], "buggy": k % 3 == 0} for k, c in enumerate(batch)]
        assert httpx.post(f"{url}/feedback", json=labels, headers=AUTH, timeout=30).status_code == 200
        drift = httpx.post(f"{url}/monitoring/drift/refresh", headers=AUTH, timeout=300)
        assert drift.status_code == 200, drift.text
        engine = create_engine(f"sqlite:///{database}")
        retrain_log.write_audit(engine, {"time": time.time(), "action": "none", "reason": "no trigger fired",
                                         "fired": [], "champion_version": 1})  # fmt: skip
        engine.dispose()
        yield {"url": url, "answers": answers, "labels": labels}
    finally:
        stop_group(process, timeout=15)
        log.close()


@pytest.fixture
def visit(chromium: Any, served: dict[str, Any], tmp_path: Path) -> Iterator[Visit]:
    """A fresh page with JavaScript disabled (the pages need none)."""
    context = chromium.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    yield Visit(context.new_page(), served["url"], tmp_path)
    context.close()


def posted_newest_first(served: dict[str, Any], keep: Callable[[dict[str, Any]], bool] = lambda a: True) -> list[str]:
    return [a["commit_id"] for a in reversed(served["answers"]) if keep(a)]


def test_every_page_loads_cleanly_and_links_to_the_others(visit: Visit, served: dict[str, Any]) -> None:
    visit.open("/ui/", "overview")
    page = visit.page
    assert page.inner_text("h1") == "Repositories"
    assert page.get_attribute(f'a[href="/ui/repositories/{REPO.replace("/", "%2F")}"]', "href") is not None
    visit.open("/ui/models", "models")
    images = page.eval_on_selector_all("figure img", "imgs => imgs.map(i => [i.src, i.naturalWidth])")
    assert images and all(width > 0 for _, width in images)  # the report PNGs loaded
    assert "v2" in page.inner_text("section[aria-labelledby=shadow]")  # the challenger scored in shadow
    visit.open("/ui/monitoring", "monitoring")
    assert sum(chart_values(page, "svg.chart rect.bar")) == 72  # 12 + 60 predictions today
    assert chart_values(page, "svg circle.point")  # weekly ROC AUC / Recall@20%Effort
    assert len(page.query_selector_all("svg rect.cell")) == len(FEATURES)  # one drift run, one cell per feature
    assert "no trigger fired" in page.inner_text("section[aria-labelledby=retrain]")
    for label in ("Repositories", "Models", "Monitoring"):
        assert page.get_attribute(f'header nav a:text-is("{label}")', "href")


def test_the_repository_page_lists_the_posted_commits_and_filters_narrow_it(
    visit: Visit, served: dict[str, Any]
) -> None:
    visit.open("/ui/", "overview-before-click")
    with visit.page.expect_navigation(wait_until="networkidle"):  # this navigation, not the idle page before it
        visit.page.click(f"text={REPO}")
    visit.screenshot("repository")
    assert visit.problems == []
    assert visit.listed() == posted_newest_first(served)
    bars = chart_values(visit.page, "svg.chart rect.bar")
    assert sum(bars) == 12  # commits per day, stacked by band

    high = posted_newest_first(served, lambda a: a["risk_band"] == "high")
    visit.page.select_option("select[name=band]", "high")
    with visit.page.expect_navigation(wait_until="networkidle"):  # this navigation, not the idle page before it
        visit.page.click("button[type=submit]")
    visit.screenshot("repository-high")
    assert visit.listed() == high and 0 < len(high) < 12, "the synthetic commits span several bands"
    bands = visit.page.eval_on_selector_all("#commit-list .band", "els => els.map(e => e.textContent)")
    assert set(bands) == {"high risk"}

    target = served["answers"][4]["commit_id"]
    visit.open(f"/ui/repositories/{REPO}", "repository-again")
    visit.page.fill("input[name=sha]", target[: len(REPO) + 4].upper())  # a prefix, as git abbreviates; any case
    with visit.page.expect_navigation(wait_until="networkidle"):  # this navigation, not the idle page before it
        visit.page.keyboard.press("Enter")  # submits the form without JavaScript
    visit.screenshot("repository-sha")
    assert visit.listed() == [target]
    assert visit.problems == []


def test_the_commit_page_shows_the_metrics_and_the_factors_of_the_answer(visit: Visit, served: dict[str, Any]) -> None:
    answer = next(a for a in served["answers"] if len(a["factors"]) >= 2)
    visit.open(f"/ui/repositories/{REPO}", "repository-for-commit")
    with visit.page.expect_navigation(wait_until="networkidle"):  # this navigation, not the idle page before it
        visit.page.click(f'#commit-list tr[data-commit-id="{answer["commit_id"]}"] td a')
    visit.screenshot("commit")
    page = visit.page
    assert visit.problems == [] and page.inner_text("h1") == answer["commit_id"]
    cells = page.eval_on_selector_all(
        "#metric-table tbody tr", "rows => rows.map(r => [r.dataset.feature, r.cells[2].textContent])"
    )
    assert [name for name, _ in cells] == list(FEATURES)
    from app.reasons import format_number

    assert [value for _, value in cells] == [format_number(answer["sent"][name]) for name in FEATURES]
    shown = page.eval_on_selector_all("#factors li", "items => items.map(i => [i.dataset.feature, i.textContent])")
    assert [name for name, _ in shown] == [f["feature"] for f in answer["factors"]]
    assert all(f["reason"] in text for (_, text), f in zip(shown, answer["factors"], strict=True))
    effects = chart_values(page, "svg.factors rect.bar")
    assert len(effects) == len(FEATURES) and any(effects)  # one bar per metric, p − p(metric at its median)
    assert chart_values(page, "svg.gauge path.marker") == [pytest.approx(answer["probability"], abs=1e-4)]
    label = next((lab for lab in served["labels"] if lab["commit_id"] == answer["commit_id"]), None)
    expected = "not yet labelled" if label is None else ("buggy" if label["buggy"] else "clean")
    assert expected in page.inner_text("section[aria-labelledby=label]")
    assert "v2" in page.inner_text("section[aria-labelledby=shadows]")


def test_the_pages_work_from_the_keyboard(visit: Visit, served: dict[str, Any]) -> None:
    visit.open("/ui/", "keyboard")
    page = visit.page
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(6):  # brand, three nav links, then the first repository of the table
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") in (REPO, "org/lib"):
            break
    name = page.evaluate("document.activeElement.textContent")
    assert name in (REPO, "org/lib")
    with page.expect_navigation(wait_until="networkidle"):  # this navigation, not the idle page before it
        page.keyboard.press("Enter")
    assert page.inner_text("h1") == name and visit.problems == []


def test_bad_input_gets_an_error_page_not_a_500(visit: Visit, served: dict[str, Any]) -> None:
    page = visit.page
    for path, status, shot in (
        ("/ui/repositories/never-seen", 404, "error-404"),
        ("/ui/commits/never-seen", 404, "error-commit-404"),
        (f"/ui/repositories/{REPO}?page=0", 422, "error-422"),
        (f"/ui/repositories/{REPO}?page=99", 422, "error-page-past-end"),
        (f"/ui/repositories/{REPO}?from=2026-02-31", 422, "error-date"),
        ("/ui/models/1/report/..%2F..%2Fmanifest.json", 404, "error-figure"),
        ("/ui/nowhere", 404, "error-unknown"),
    ):
        response = page.goto(served["url"] + path)
        visit.screenshot(shot)
        assert response.status == status, path
        assert "text/html" in response.headers["content-type"] and page.inner_text("h1") in (
            "Not found",
            "Invalid request",
        )
    # Any other client gets the one JSON error shape.
    answer = httpx.get(f"{served['url']}/ui/repositories/never-seen")
    assert answer.status_code == 404 and answer.json()["error"]["type"] == "NotLogged"
