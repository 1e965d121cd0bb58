"""Formatting filters, the template environment and error rendering by Accept header."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from app.errors import InvalidInput, NotLogged
from app.ui import rendering


def request(accept: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/ui/x", "headers": [(b"accept", accept.encode())]})


def test_filters_format_for_people() -> None:
    assert rendering.utc(1_790_000_000) == "2026-09-21 14:13 UTC"
    assert rendering.utc(1_790_000_000, "seconds") == "2026-09-21 14:13:20 UTC" and rendering.utc(None) == "—"
    assert rendering.day(1_790_000_000) == "2026-09-21"
    assert (rendering.percent(0.1234), rendering.percent(0.1234, 1), rendering.percent(None)) == ("12%", "12.3%", "—")
    assert (rendering.metric(0.70449), rendering.metric(None), rendering.count(1234567)) == ("0.704", "—", "1,234,567")


@pytest.mark.parametrize(
    ("commit_id", "short"),
    [("org/app_" + "ab12" * 10, "ab12ab12ab12"), ("9f2c1e7", "9f2c1e7"), ("release_v2", "release_v2"), (None, "—")],
)
def test_short_sha_takes_the_sha_part_of_a_commit_id(commit_id: str | None, short: str) -> None:
    assert rendering.short_sha(commit_id) == short


def test_links_escape_path_parts_and_keep_only_set_query_values() -> None:
    assert rendering.path_part("org/app name") == "org%2Fapp%20name"
    assert rendering.query({"band": "high", "sha": "", "to": None, "page": 2}, page=3) == "?band=high&page=3"


def test_templates_are_autoescaped() -> None:
    html = rendering.Renderer().page("error.html", 404, status=404, kind="NotFound", message="<script>x</script>",
                                     title="t").body.decode()  # fmt: skip
    assert "<script>x" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


def test_errors_are_pages_for_browsers_and_json_for_other_clients() -> None:
    renderer = rendering.Renderer()
    page = renderer.error(request("text/html,application/xhtml+xml"), NotLogged("no prediction for 'x'"))
    assert page.status_code == 404 and page.media_type == "text/html" and b"no prediction for" in page.body
    bad = InvalidInput("1 invalid parameter(s)", [{"field": "query.page", "message": "too large"}])
    page = renderer.error(request("text/html"), bad)
    assert page.status_code == 422 and b"query.page" in page.body
    json = renderer.error(request("*/*"), bad)
    assert json.status_code == 422 and json.media_type == "application/json" and b'"type":"InvalidInput"' in json.body
