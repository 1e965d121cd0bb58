"""HTTP request/response models (the API contract other services code against)."""

from __future__ import annotations

import operator
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
