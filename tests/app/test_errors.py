"""Domain errors: a message and JSON-ready details on every one, one base class, and no HTTP in them."""

from __future__ import annotations

import ast
import inspect

import orjson
import pytest

from app import errors

DOMAIN = [
    cls
    for cls in vars(errors).values()
    if isinstance(cls, type) and issubclass(cls, errors.CommitRiskError) and cls is not errors.CommitRiskError
]


def test_errors_know_nothing_of_http() -> None:
    tree = ast.parse(inspect.getsource(errors))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported <= {"__future__", "typing"}


@pytest.mark.parametrize("cls", DOMAIN, ids=lambda c: c.__name__)
def test_every_error_carries_a_message_and_serialisable_details(cls: type[errors.CommitRiskError]) -> None:
    plain = cls("went wrong")
    assert plain.message == str(plain) == "went wrong" and plain.details == []
    detailed = cls("bad field", [{"field": "la", "message": "negative"}])
    assert orjson.loads(orjson.dumps(detailed.details)) == [{"field": "la", "message": "negative"}]
    assert cls.__doc__, "the docstring says when it is raised"


def test_details_are_not_shared_between_instances() -> None:
    first, second = errors.InvalidInput("a"), errors.InvalidInput("b")
    first.details.append({"field": "x"})
    assert second.details == []


def test_drift_unavailable_is_a_domain_error() -> None:
    assert issubclass(errors.DriftUnavailable, errors.CommitRiskError)
    assert errors.DriftUnavailable in DOMAIN
