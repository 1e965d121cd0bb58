"""Dependencies declared once as `Annotated` aliases over the one `Services` (app.state.services, built by
create_app); the hot routes (DirectRoute) call `services_of(request)` instead of solving dependencies."""

from __future__ import annotations

import secrets
from typing import Annotated, Any, TypeVar

import pydantic_core
from fastapi import Depends, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from app.api.errors import field_details
from app.errors import BodyTooLarge, Forbidden, InvalidInput, MalformedBody, Unauthenticated
from app.metrics import ServiceMetrics
from app.monitoring.monitor import Monitoring
from app.registry import ModelRegistry
from app.services import Services
from app.settings import Settings

M = TypeVar("M", bound=BaseModel)
_TRUE = frozenset({"1", "true", "on", "yes", "t", "y"})
_FALSE = frozenset({"0", "false", "off", "no", "f", "n"})


class DirectRoute(APIRoute):
    """Hot routes: FastAPI documents them, but the endpoint is called with the bare Request.

    FastAPI's per-request dependency solving costs more than scoring one commit; these endpoints read
    their own body and query (`read_json`, `query_flag`) and declare both via `openapi_extra`.
    """

    def get_route_handler(self) -> Any:
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            response: Response = await endpoint(request)
            return response

        return handler


def query_flag(request: Request, name: str, default: bool) -> bool:
    """A boolean query parameter (true/false/1/0/yes/no/on/off); InvalidInput for anything else."""
    if not request.scope["query_string"]:
        return default
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InvalidInput(
        f"query parameter {name!r} must be a boolean", [{"field": name, "message": "expected true or false"}]
    )


def flag_parameter(name: str, default: bool, description: str) -> dict[str, Any]:
    """OpenAPI description of a `query_flag` parameter."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "boolean", "default": default},
    }


def services_of(request: Request) -> Services:
    """The services of the app serving this request."""
    services: Services = request.app.state.services
    return services


def get_settings(request: Request) -> Settings:
    """The settings this app was built with."""
    return services_of(request).settings


def get_registry(request: Request) -> ModelRegistry:
    """This process's model registry."""
    return services_of(request).registry


def get_metrics(request: Request) -> ServiceMetrics:
    """This app's Prometheus metrics."""
    return services_of(request).metrics


def get_monitoring(request: Request) -> Monitoring:
    """This process's monitoring (store, prediction log, job schedule)."""
    return services_of(request).monitoring


def require_admin(request: Request) -> None:
    """Bearer-token check for admin routes: 401 without a token, 403 with a wrong one (or none configured)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("this route needs 'Authorization: Bearer <admin token>'")
    expected = get_settings(request).admin_token
    if expected is None:
        raise Forbidden("admin routes are disabled: COMMITRISK_ADMIN_TOKEN is not set")
    if not secrets.compare_digest(token.strip().encode(), expected.get_secret_value().encode()):
        raise Forbidden("wrong admin token")


async def read_json(request: Request, max_bytes: int) -> Any:
    """The parsed JSON body (NaN/Infinity kept so validation can name the field); 400/413 otherwise."""
    body = await request.body()
    if len(body) > max_bytes:  # the middleware stops most of these before they are read
        raise BodyTooLarge(f"request body exceeds {max_bytes} bytes")
    return parse_json(body)


def parse_json(body: bytes) -> Any:
    """JSON bytes → Python objects; MalformedBody with the parser's message when they are not JSON."""
    try:
        return pydantic_core.from_json(body, allow_inf_nan=True)
    except ValueError as exc:
        raise MalformedBody("request body is not valid JSON", [{"field": None, "message": str(exc)}]) from None


ServicesDep = Annotated[Services, Depends(services_of)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
MonitoringDep = Annotated[Monitoring, Depends(get_monitoring)]
AdminDep = Annotated[None, Depends(require_admin)]


def validate(model: type[M], data: Any) -> M:
    """Validate parsed JSON against a request model; InvalidInput with one detail per bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = field_details(exc.errors(include_url=False, include_context=False, include_input=False))
        raise InvalidInput(f"{len(details)} invalid field(s) in the request body", details) from None
