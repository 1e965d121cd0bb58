"""Request bodies: JSON only (415 otherwise), parsed with NaN kept for field-level errors, validated against a
request model with bounded error details."""

from __future__ import annotations

import functools
import types
import typing
from typing import Any, TypeVar

import orjson
import pydantic_core
from fastapi import Request
from pydantic import BaseModel, RootModel, ValidationError
from starlette.requests import ClientDisconnect

from app.api.errors import MAX_DETAILS, field_details, truncation
from app.errors import BodyTooLarge, InvalidInput, MalformedBody, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)


def media_type(request: Request) -> bytes | None:
    """The request's Content-Type without parameters, lower-case; None when the header is absent."""
    for key, value in request.scope["headers"]:
        if key == b"content-type":
            return value.split(b";", 1)[0].strip().lower()
    return None


def is_json(kind: bytes | None) -> bool:
    """`application/json` or a `+json` type (what a browser cannot send cross-site without asking first)."""
    return kind is not None and (kind == b"application/json" or kind.endswith(b"+json"))


def require_json(request: Request) -> None:
    """415 unless the body is declared JSON: a form or text/plain post from another site is never read."""
    kind = media_type(request)
    if not is_json(kind):
        shown = "none" if kind is None else repr(kind.decode("latin-1")[:60])
        raise UnsupportedMediaType(
            f"this route reads JSON bodies only (Content-Type: application/json); got {shown}",
            [{"field": "content-type", "message": "expected application/json"}],
        )


async def read_json(request: Request, max_bytes: int) -> Any:
    """The parsed JSON body (NaN/Infinity kept so validation can name the field); 400/413/415 otherwise."""
    return parse_json(await read_json_bytes(request, max_bytes))


async def read_json_bytes(request: Request, max_bytes: int) -> bytes:
    """The body of a request declared JSON, unparsed; 413/415 otherwise."""
    require_json(request)  # before reading: a refused body is never buffered
    body = await receive_body(request)
    if len(body) > max_bytes:  # the middleware stops most of these before they are read
        raise BodyTooLarge(f"request body exceeds {max_bytes} bytes")
    return body


async def receive_body(request: Request) -> bytes:
    """The whole request body, as `request.body()` returns it (and remembered there), read straight from the ASGI
    `receive`: Starlette's stream generator costs ~4 µs a request, and a body almost always arrives in one message."""
    read: bytes | None = request.__dict__.get("_body")  # a dict lookup: hasattr raises and catches when absent
    if read is not None:
        return read
    chunks: list[bytes] = []
    while True:
        message = await request.receive()
        kind = message["type"]
        if kind == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        elif kind == "http.disconnect":
            request._is_disconnected = True
            raise ClientDisconnect()
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    request._body = body
    return body


async def read_optional_json(request: Request) -> Any:
    """The parsed JSON body, or `{}` for an empty one (routes whose body is optional); 400/415 otherwise."""
    body = await receive_body(request)
    if not body.strip():
        return {}
    require_json(request)
    return parse_json(body)


def quick_json(body: bytes) -> Any:
    """orjson's parse of `body` (twice as fast as `parse_json`), or None where orjson refuses it: NaN, Infinity or
    a number beyond a double, which `parse_json` keeps so that validation can name the field."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def parse_json(body: bytes) -> Any:
    """JSON bytes → Python objects; MalformedBody with the parser's message when they are not JSON."""
    try:
        return pydantic_core.from_json(body, allow_inf_nan=True)
    except ValueError as exc:
        raise MalformedBody("request body is not valid JSON", [{"field": None, "message": str(exc)}]) from None


def validate(model: type[M], data: Any) -> M:
    """Validate parsed JSON against a request model; InvalidInput with one detail per bad field (the first
    MAX_DETAILS of them when there are many: a body with 250,000 unknown keys costs a key scan, not 250,000
    error objects)."""
    allowed, _ = _shape(model)
    if allowed is not None and isinstance(data, dict) and len(data) > len(allowed) + MAX_DETAILS:
        # Absurdly many keys: refused from a key count, before pydantic validates anything.
        present = sum(1 for name in allowed if name in data)
        _refuse_unknown(model, data, len(data) - present)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        count = exc.error_count()
        if count > MAX_DETAILS:
            _refuse_unknown(model, data, count)
        details = field_details(exc.errors(include_url=False, include_context=False, include_input=False))
        raise InvalidInput(f"{count:,} invalid field(s) in the request body", details) from None


def _refuse_unknown(model: type[BaseModel], data: Any, count: int) -> None:
    """InvalidInput listing the first unknown keys when `count` errors are mostly those (else nothing)."""
    unknown = unknown_fields(model, data, MAX_DETAILS - 1)
    if unknown:
        extra = "Extra inputs are not permitted"  # pydantic's words, so both paths read alike
        details = [{"field": f, "message": extra, "type": "extra_forbidden"} for f in unknown]
        details.append(truncation(count - len(unknown)))
        raise InvalidInput(f"{count:,} invalid field(s) in the request body", details)


def unknown_fields(model: type[BaseModel], data: Any, limit: int) -> list[str]:
    """Up to `limit` keys of `data` that `model` forbids, as field paths, depth first through nested models."""
    found: list[str] = []
    _collect_unknown(model, data, "", limit, found)
    return found


def _collect_unknown(model: type[BaseModel], data: Any, prefix: str, limit: int, found: list[str]) -> None:
    allowed, nested = _shape(model)
    if issubclass(model, RootModel):
        data = {"root": data}  # a root model's value is its one field, named `root` in no error path
    if not isinstance(data, dict):
        return
    if allowed is not None and len(data) > len(allowed):
        for key in data:
            if key not in allowed:
                found.append(f"{prefix}{key}")
                if len(found) >= limit:
                    return
    for name, child in nested.items():
        value = data.get(name)
        here = "" if name == "root" and issubclass(model, RootModel) else f"{prefix}{name}."
        items = enumerate(value) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            _collect_unknown(child, item, here if index is None else f"{here}{index}.", limit, found)
            if len(found) >= limit:
                return


@functools.cache
def _shape(model: type[BaseModel]) -> tuple[frozenset[str] | None, dict[str, type[BaseModel]]]:
    """(the keys `model` allows when it forbids others, else None; its fields holding models or lists of them)."""
    allowed = frozenset(model.model_fields) if model.model_config.get("extra") == "forbid" else None
    nested = {}
    for name, field in model.model_fields.items():
        child = _model_in(field.annotation)
        if child is not None:
            nested[name] = child
    return allowed, nested


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model an annotation holds directly, in a list, or in an optional/union, else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
