"""Plain bodies: the common request shapes checked in a few C-level passes instead of building request models.

A body these functions take is one the pydantic models (app/schemas.py) certainly accept with the same values;
anything they are not sure of they leave to the models (None), which validate it and word every refusal. Property
tests (tests/app/test_plain.py) check that nothing is taken that the models refuse.
"""

from __future__ import annotations

import math
import operator
from itertools import chain
from typing import Any

from app.contract import FEATURES
from app.schemas import FLOAT32_MAX, CommitIn

_COMMIT_KEYS = frozenset(CommitIn.model_fields)
_METRICS_OF = operator.itemgetter(*FEATURES)  # a dict's 15 metrics as a tuple, in C
_ID_LIMIT, _REPOSITORY_LIMIT = 200, 500  # CommitIn's max_length of commit_id and repository
EXACT_FLOAT = 2**53  # ints up to this convert to float exactly; beyond, they are left to pydantic (or numpy)
NUMBER_TYPES = frozenset({int, float})  # what a strict float field takes (never bool)


def plain_commit(data: Any) -> tuple[list[float], str | None, str | None] | None:
    """(the 15 metrics in FEATURES order, commit_id, repository) when CommitIn certainly accepts `data` with these
    values; None when it might not — then CommitIn validates and words the errors.

    The common body of `/predict` is checked here in a few C-level passes instead of building a model (~4 µs less a
    request); anything unusual (a missing or unknown key, a bool, NaN, a too-long or NUL-carrying text) goes to
    pydantic. Metrics may be ints, as CommitIn accepts them: numpy converts them exactly as float() does.
    """
    if type(data) is not dict or not data.keys() <= _COMMIT_KEYS:
        return None
    try:
        row = list(_METRICS_OF(data))
    except KeyError:
        return None
    # Types first (a bool or str never reaches a comparison); fsum is NaN or infinite when a value is. The bounds are
    # exact for ints: one above FLOAT32_MAX that would round down to it is left to pydantic.
    if not set(map(type, row)) <= NUMBER_TYPES or not math.isfinite(math.fsum(row)):
        return None
    if min(row) < 0 or max(row) > FLOAT32_MAX:
        return None
    commit_id, repository, date = data.get("commit_id"), data.get("repository"), data.get("author_date")
    for text, limit in ((commit_id, _ID_LIMIT), (repository, _REPOSITORY_LIMIT)):
        if text is not None and (type(text) is not str or len(text) > limit or "\x00" in text):
            return None
    if date is not None and not (
        (type(date) is float and math.isfinite(date)) or (type(date) is int and -EXACT_FLOAT <= date <= EXACT_FLOAT)
    ):
        return None
    return row, commit_id, repository


def plain_batch(data: Any, limit: int) -> tuple[list[tuple[float, ...]], list[str | None], list[str | None]] | None:
    """(rows, commit_ids, repositories) when BatchIn certainly accepts `data` with these values: `{"commits": […]}`
    of at most `limit` commits, each a body `plain_commit` would take; None when it might not — then BatchIn
    validates and words the errors (and a batch over the limit is refused there, as before).

    `plain_commit`'s checks, each made once over the whole batch's values in C-level passes rather than per commit:
    on a 1,000-commit batch pydantic's parse and validation took ~14 ms, `plain_commit` per commit ~9 ms.
    """
    if type(data) is not dict or len(data) != 1 or type(commits := data.get("commits")) is not list:
        return None
    if len(commits) > limit or not all(type(c) is dict and c.keys() <= _COMMIT_KEYS for c in commits):
        return None
    try:
        rows: list[tuple[float, ...]] = list(map(_METRICS_OF, commits))
    except KeyError:
        return None
    values = list(chain.from_iterable(rows))
    if values and (not set(map(type, values)) <= NUMBER_TYPES or not math.isfinite(math.fsum(values))):
        return None
    if values and (min(values) < 0 or max(values) > FLOAT32_MAX):
        return None
    ids = [c.get("commit_id") for c in commits]
    repositories = [c.get("repository") for c in commits]
    if not (_plain_texts(ids, _ID_LIMIT) and _plain_texts(repositories, _REPOSITORY_LIMIT)):
        return None
    dates = [d for c in commits if (d := c.get("author_date")) is not None]
    if not all(
        (type(d) is float and math.isfinite(d)) or (type(d) is int and -EXACT_FLOAT <= d <= EXACT_FLOAT) for d in dates
    ):
        return None
    return rows, ids, repositories


def _plain_texts(texts: list[Any], limit: int) -> bool:
    """Whether every text is None or a str of at most `limit` characters without NUL (C-level passes)."""
    present = [t for t in texts if t is not None]
    return (
        all(type(t) is str for t in present)
        and max(map(len, present), default=0) <= limit
        and "\x00" not in "".join(present)
    )


_INFER_KEYS = frozenset({"id", "inputs"})
_TENSOR_KEYS = frozenset({"name", "shape", "datatype", "data"})
_JSON_DATATYPES = frozenset({"FP32", "FP64"})  # JSON data is read the same way for both


def plain_infer(data: Any, input_name: str, max_rows: int) -> tuple[str | None, int, list[float]] | None:
    """(id, rows, the flat data) when a v2 infer body is certainly accepted as is by InferRequestIn and the tensor
    checks: one `input_name` FP32/FP64 tensor of shape [rows ≤ max_rows, 15], data (flat, or one list per row) of
    finite numbers in [0, FLOAT32_MAX], no parameters or outputs; None otherwise — then the model and the tensor
    checks word the errors.

    The common v2 body checked in a few C-level passes, like `plain_commit`: no model object, no numpy checks.
    """
    if type(data) is not dict or not data.keys() <= _INFER_KEYS:
        return None
    request_id, inputs = data.get("id"), data.get("inputs")
    if (request_id is not None and type(request_id) is not str) or type(inputs) is not list or len(inputs) != 1:
        return None
    tensor = inputs[0]
    if type(tensor) is not dict or tensor.keys() != _TENSOR_KEYS or tensor["name"] != input_name:
        return None
    shape, values = tensor["shape"], tensor["data"]
    datatype = tensor["datatype"]
    if type(datatype) is not str or datatype not in _JSON_DATATYPES or type(shape) is not list or len(shape) != 2:
        return None
    rows, width = shape
    if type(rows) is not int or type(width) is not int or width != len(FEATURES) or not 1 <= rows <= max_rows:
        return None
    if type(values) is not list:
        return None
    if len(values) == rows and type(values[0]) is list:  # one list per row, as bench/serve.py and many clients send
        if not all(type(row) is list and len(row) == width for row in values):
            return None
        values = values[0] if rows == 1 else list(chain.from_iterable(values))
    if len(values) != rows * width or not set(map(type, values)) <= NUMBER_TYPES:
        return None
    # As `plain_commit`: fsum is NaN or infinite when a value is; ints beyond 2**53 are left to numpy's own reading.
    if not math.isfinite(math.fsum(values)) or min(values) < 0 or max(values) > min(FLOAT32_MAX, EXACT_FLOAT):
        return None
    return request_id, rows, values
