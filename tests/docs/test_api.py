"""docs/api.md lists exactly the app's routes (its OpenAPI schema) and every domain error with its status."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pytest
from fastapi import FastAPI

from app.api.errors import STATUS
from app.main import create_app
from app.settings import Settings
from tests.docs.markdown import DOCS, read, section, spans, table_rows

PAGE = DOCS / "api.md"
ROUTE = re.compile(r"(GET|POST|PUT|PATCH|DELETE) (/\S*)")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """The app as `commitrisk serve` builds it (no model needed: routes exist before one is loaded)."""
    directory = tmp_path_factory.mktemp("api-docs")
    (directory / "models").mkdir()
    return create_app(Settings(models_dir=directory / "models", database_url=f"sqlite:///{directory / 'log.db'}"))


def served_routes(app: FastAPI) -> set[str]:
    """`METHOD /path` of every operation in the app's OpenAPI schema."""
    return {f"{method.upper()} {path}" for path, operations in app.openapi()["paths"].items() for method in operations}


def documented_routes(text: str) -> set[str]:
    """`METHOD /path` of every row of the route table (its first cell)."""
    found: set[str] = set()
    for row in table_rows(section(text, "Routes")):
        for value in spans(row[0]):
            if ROUTE.fullmatch(value):
                found.add(value)
    return found


def route_mismatches(served: set[str], text: str) -> list[str]:
    """Routes the app serves but the table lacks, and rows for routes the app does not have."""
    documented = documented_routes(text)
    return [f"{r}: not in docs/api.md" for r in sorted(served - documented)] + [
        f"{r}: documented, but the app has no such route" for r in sorted(documented - served)
    ]


def documented_statuses(text: str) -> dict[str, set[int]]:
    """Error type → statuses, from the error table (`| 401 / 403 | `A` / `B` |` pairs them in order)."""
    found: dict[str, set[int]] = {}
    for row in table_rows(section(text, "Errors"))[1:]:
        statuses = [int(s) for s in re.findall(r"\b\d{3}\b", row[0])]
        names = spans(row[1])
        pairs = (
            zip(names, statuses, strict=True)
            if len(statuses) == len(names) > 1
            else ((n, s) for n in names for s in statuses)
        )
        for name, status in pairs:
            found.setdefault(name, set()).add(status)
    return found


def error_mismatches(table: Iterable[tuple[type, int]], text: str) -> list[str]:
    """Domain errors whose status the error table does not state."""
    documented = documented_statuses(text)
    return [
        f"{error.__name__}: status {status}, documented {sorted(documented.get(error.__name__, set()))}"
        for error, status in table
        if status not in documented.get(error.__name__, set())
    ]


def test_every_route_is_documented(app: FastAPI) -> None:
    served = served_routes(app)
    assert "POST /predict" in served and "GET /metrics" in served
    assert not route_mismatches(served, read(PAGE))


def test_every_domain_error_has_its_status() -> None:
    assert not error_mismatches(STATUS.items(), read(PAGE))


def test_every_json_body_route_lists_415(app: FastAPI) -> None:
    # The routes "JSON bodies only" names answer 415 for a body not declared JSON: their OpenAPI errors say so.
    named = {path for path in spans(section(read(PAGE), "JSON bodies only")) if path.startswith("/")}
    assert {"/predict", "/feedback", "/retrain"} <= named
    paths = app.openapi()["paths"]
    assert {
        path: sorted(paths[path]["post"]["responses"])
        for path in named
        if "415" not in paths[path]["post"]["responses"]
    } == {}


# ---- the checkers fail on stale docs ---------------------------------------------------------------------

FABRICATED = """## Routes

| route | auth | what |
|---|---|---|
| `POST /predict` | — | score |
| `GET /gone` | — | removed from the code |

## Errors

| status | type | when |
|---|---|---|
| 401 / 403 | `Unauthenticated` / `Forbidden` | admin |
| 404 | `ModelNotFound`, `NotFound` | unknown |
"""


def test_a_stale_route_table_is_reported() -> None:
    assert route_mismatches({"POST /predict", "GET /models/{version}"}, FABRICATED) == [
        "GET /models/{version}: not in docs/api.md",
        "GET /gone: documented, but the app has no such route",
    ]


def test_a_wrong_status_is_reported() -> None:
    class Unauthenticated(Exception): ...

    class Forbidden(Exception): ...

    class ModelNotFound(Exception): ...

    class Missing(Exception): ...

    assert documented_statuses(FABRICATED) == {
        "Unauthenticated": {401},
        "Forbidden": {403},
        "ModelNotFound": {404},
        "NotFound": {404},
    }
    table = {Unauthenticated: 401, Forbidden: 401, ModelNotFound: 404, Missing: 500}
    assert error_mismatches(table.items(), FABRICATED) == [
        "Forbidden: status 401, documented [403]",
        "Missing: status 500, documented []",
    ]
