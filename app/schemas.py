"""HTTP request/response models (the API contract other services code against)."""

from __future__ import annotations

import math
import operator
from itertools import chain
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from app.contract import FEATURES

_ROW = operator.attrgetter(*FEATURES)  # half the cost of a getattr loop on a 1,000-commit batch

# strict: "12" or true are not numbers; allow_inf_nan=False: NaN/Infinity literals are rejected;
# le: the model computes in float32, where larger values would become infinity.
FLOAT32_MAX = 3.4028234663852886e38
Metric = Annotated[float, Field(ge=0, le=FLOAT32_MAX, strict=True, allow_inf_nan=False)]


def storable(value: str) -> str:
    """Text every database can store: PostgreSQL refuses the NUL character in a text column."""
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    return value


# Every text a route stores (commit ids, repositories, labels' fields, retrain reasons) carries this validator,
# after its length limit (`Annotated[str, Field(max_length=…), STORABLE]`), so a NUL is a 422 naming the field
# and never reaches the prediction log or a database statement.
STORABLE = AfterValidator(storable)


class CommitIn(BaseModel):
    """One commit: the 15 change metrics (../shared/METRICS.md) plus optional identification."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ns: Metric = Field(description="distinct subsystems touched")
    nd: Metric = Field(description="distinct directories touched")
    nf: Metric = Field(description="counted files changed")
    entropy: Metric = Field(description="spread of the change over files (not normalised)")
    la: Metric = Field(description="lines added")
    ld: Metric = Field(description="lines deleted")
    ha: Metric = Field(description="hunks with added lines")
    hd: Metric = Field(description="hunks with deleted lines")
    lt: Metric = Field(description="mean line count of the changed files")
    ndev: Metric = Field(description="developers who changed these files before")
    age: Metric = Field(description="mean days since the files last changed")
    nuc: Metric = Field(description="earlier changes to these files")
    exp: Metric = Field(description="earlier commits by the author")
    rexp: Metric = Field(description="recency-weighted author experience")
    sexp: Metric = Field(description="earlier commits by the author in these subsystems")
    commit_id: Annotated[str, Field(max_length=200), STORABLE] | None = Field(
        None, description="echoed back; e.g. the SHA"
    )
    repository: Annotated[str, Field(max_length=500), STORABLE] | None = None
    # float (strict: ints accepted, strings not) rather than int | float: one field name in error paths.
    author_date: float | None = Field(
        None, strict=True, allow_inf_nan=False, description="author timestamp, Unix seconds"
    )

    def row(self) -> tuple[float, ...]:
        """The metrics in model input order."""
        row: tuple[float, ...] = _ROW(self)
        return row


_COMMIT_KEYS = frozenset(CommitIn.model_fields)
_METRICS_OF = operator.itemgetter(*FEATURES)  # a dict's 15 metrics as a tuple, in C
_ID_LIMIT, _REPOSITORY_LIMIT = 200, 500  # CommitIn's max_length of commit_id and repository
_EXACT_FLOAT = 2**53  # an int author_date beyond this is left to pydantic
_NUMBER_TYPES = frozenset({int, float})


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
    if not set(map(type, row)) <= _NUMBER_TYPES or not math.isfinite(math.fsum(row)):
        return None
    if min(row) < 0 or max(row) > FLOAT32_MAX:
        return None
    commit_id, repository, date = data.get("commit_id"), data.get("repository"), data.get("author_date")
    for text, limit in ((commit_id, _ID_LIMIT), (repository, _REPOSITORY_LIMIT)):
        if text is not None and (type(text) is not str or len(text) > limit or "\x00" in text):
            return None
    if date is not None and not (
        (type(date) is float and math.isfinite(date)) or (type(date) is int and -_EXACT_FLOAT <= date <= _EXACT_FLOAT)
    ):
        return None
    return row, commit_id, repository


class BatchIn(BaseModel):
    """Several commits scored in one request; answers keep this order."""

    model_config = ConfigDict(extra="forbid")

    commits: list[CommitIn]


class FactorOut(BaseModel):
    feature: str
    value: float
    median: float = Field(description="typical value compared with: training median, or (linear) zero-contribution")
    effect: float = Field(description="probability minus the probability with this input at its typical value")
    reason: str
    contribution: float | None = Field(
        None, description="linear models: this input's exact share of the log-odds (coefficient × deviation)"
    )


class PredictionOut(BaseModel):
    request_id: str
    commit_id: str | None
    probability: float
    buggy: bool = Field(description="probability >= threshold")
    risk_band: Literal["low", "medium", "high"]
    threshold: float
    model_version: int
    factors: list[FactorOut]


class BatchOut(BaseModel):
    model_version: int
    predictions: list[PredictionOut]


class ReloadIn(BaseModel):
    """Empty body: load the champion pointer. `version`: load it and move the pointer."""

    model_config = ConfigDict(extra="forbid")

    version: int | str | None = Field(None, description="a published version number")

    @field_validator("version", mode="before")
    @classmethod
    def _integer_or_digits(cls, value: Any) -> Any:
        # JSON true is not version 1 and 2.0 is not version 2 (pydantic's lax int would take both); "3" is fine.
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | str)):
            raise ValueError("expected a positive integer such as 3")
        return value


class ErrorBody(BaseModel):
    type: str
    message: str
    details: list[dict[str, Any]]


class ErrorOut(BaseModel):
    error: ErrorBody


# Lists bounded so a body cannot make validation build one error per element (a 4 MB `shape` of strings).
MAX_V2_ITEMS = 16


class InferTensorIn(BaseModel):
    """Open Inference Protocol v2 request tensor (JSON data, row-major, flat or nested)."""

    name: str
    shape: list[int] = Field(max_length=MAX_V2_ITEMS)
    datatype: str
    parameters: dict[str, Any] | None = None
    data: list[Any] | None = None


class InferOutputIn(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferRequestIn(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[InferTensorIn] = Field(max_length=MAX_V2_ITEMS)
    outputs: list[InferOutputIn] | None = Field(None, max_length=MAX_V2_ITEMS)


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
    if len(values) != rows * width or not set(map(type, values)) <= _NUMBER_TYPES:
        return None
    # As `plain_commit`: fsum is NaN or infinite when a value is; ints beyond 2**53 are left to numpy's own reading.
    if not math.isfinite(math.fsum(values)) or min(values) < 0 or max(values) > min(FLOAT32_MAX, _EXACT_FLOAT):
        return None
    return request_id, rows, values


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """JSON schema with `$defs` inlined, for routes that parse their own body (openapi_extra)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def request_body(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON body that the route reads itself (for speed and error control)."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": inline_schema(model)}},
        }
    }
